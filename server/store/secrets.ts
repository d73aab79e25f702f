/** A secret as the API lists it: its name and when it was last set, never its value. */
export interface SecretName {
  name: string;
  updated_at: string;
}

/** A secret as stored: its value sealed (server/secrets/secretBox.ts). */
export interface SealedSecret extends SecretName {
  sealed: string;
}

/** Project secrets, kept sealed. A project's deletion removes its secrets (the store cascades). */
export interface SecretStore {
  /** by name */
  list(projectId: number): Promise<SecretName[]>;
  /** every secret of a project, sealed, by name */
  listSealed(projectId: number): Promise<SealedSecret[]>;
  /** sets or replaces one; `created` is false when it replaced one */
  put(projectId: number, name: string, sealed: string): Promise<SecretName & { created: boolean }>;
  /** false if there was none */
  delete(projectId: number, name: string): Promise<boolean>;
}
