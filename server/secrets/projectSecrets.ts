import { badRequest, notFound } from '../errors.js';
import type { SecretName, SecretStore } from '../store/secrets.js';
import type { SecretBox } from './secretBox.js';

/** Environment-variable names: what a step sees the secret as. */
export const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;
export const MAX_SECRET_NAME = 128;
/** Shorter values would mask ordinary words in every log, and are too easy to guess (Buildkite's limit). */
export const MIN_SECRET_BYTES = 6;
/** Well under Linux's 128 KiB limit of one environment string. */
export const MAX_SECRET_BYTES = 32 * 1024;
export const MAX_SECRETS_PER_PROJECT = 100;

/** The hub's own variables (HUB_RUN_ID, HUB_RUN_TOKEN...): a secret may not shadow them. */
const RESERVED = /^HUB_/;

export function checkSecretName(name: string): string {
  if (name.length > MAX_SECRET_NAME || !SECRET_NAME.test(name)) {
    throw badRequest('invalid_secret_name', `Expected the secret's name to be an environment variable name (A-Z, 0-9 and "_", not starting with a digit, at most ${MAX_SECRET_NAME} characters), got ${JSON.stringify(name.slice(0, MAX_SECRET_NAME))}`, { field: 'name' });
  }
  if (RESERVED.test(name)) throw badRequest('reserved_secret_name', `Secret names starting with HUB_ are the hub's own variables; got ${JSON.stringify(name)}`, { field: 'name' });
  return name;
}

/** Checks a value without ever putting it (or any part of it) in the error. */
export function checkSecretValue(value: unknown): string {
  if (value === undefined) throw badRequest('missing_field', 'Expected `value` to be given', { field: 'value' });
  if (typeof value !== 'string') throw badRequest('invalid_field', `Expected \`value\` to be a string, got a value of type ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`, { field: 'value' });
  const bytes = Buffer.byteLength(value);
  if (bytes < MIN_SECRET_BYTES) {
    throw badRequest('secret_too_short', `Expected \`value\` to be at least ${MIN_SECRET_BYTES} bytes (UTF-8), got ${bytes}: a shorter value would be masked wherever it appears in ordinary output, and is too easy to guess`, { field: 'value', min_bytes: MIN_SECRET_BYTES });
  }
  if (bytes > MAX_SECRET_BYTES) throw badRequest('secret_too_long', `Expected \`value\` to be at most ${MAX_SECRET_BYTES} bytes (UTF-8), got ${bytes}`, { field: 'value', max_bytes: MAX_SECRET_BYTES });
  if (value.includes('\0') || !value.isWellFormed()) throw badRequest('invalid_field', 'Expected `value` to be text without NUL characters (an environment variable cannot hold them)', { field: 'value' });
  return value;
}

/** A project's secrets: set, listed by name, deleted, and opened only to hand to a run's runner. */
export class ProjectSecrets {
  constructor(private readonly store: SecretStore, private readonly box: SecretBox) {}

  list(projectId: number): Promise<SecretName[]> {
    return this.store.list(projectId);
  }

  async set(projectId: number, name: string, value: string): Promise<SecretName & { created: boolean }> {
    checkSecretName(name);
    checkSecretValue(value);
    const existing = await this.store.list(projectId);
    if (existing.length >= MAX_SECRETS_PER_PROJECT && !existing.some((secret) => secret.name === name)) {
      throw badRequest('too_many_secrets', `A project has at most ${MAX_SECRETS_PER_PROJECT} secrets`);
    }
    return this.store.put(projectId, name, this.box.seal(projectId, name, value));
  }

  async delete(projectId: number, name: string): Promise<void> {
    if (!(await this.store.delete(projectId, name))) throw notFound('Secret', name);
  }

  /** Every value of a project, by name, for its runs' steps (and their masking). Throws UnsealError. */
  async values(projectId: number): Promise<Record<string, string>> {
    const values: Record<string, string> = {};
    for (const secret of await this.store.listSealed(projectId)) values[secret.name] = this.box.unseal(projectId, secret.name, secret.sealed);
    return values;
  }
}
