import type { SealedSecret, SecretName, SecretStore } from '../secrets.js';
import type { Db } from './db.js';

export class SqliteSecretStore implements SecretStore {
  constructor(private readonly db: Db) {}

  list(projectId: number): Promise<SecretName[]> {
    return this.db.all<SecretName[]>('SELECT name, updated_at FROM project_secrets WHERE project_id = ? ORDER BY name', projectId);
  }

  listSealed(projectId: number): Promise<SealedSecret[]> {
    return this.db.all<SealedSecret[]>('SELECT name, sealed, updated_at FROM project_secrets WHERE project_id = ? ORDER BY name', projectId);
  }

  async put(projectId: number, name: string, sealed: string): Promise<SecretName & { created: boolean }> {
    const updatedAt = new Date().toISOString();
    // The upsert leaves one row however many set one name at once (`created` may then say so for two).
    const existed = await this.db.get<{ n: number }>('SELECT 1 AS n FROM project_secrets WHERE project_id = ? AND name = ?', projectId, name);
    await this.db.run(
      'INSERT INTO project_secrets (project_id, name, sealed, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (project_id, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at',
      projectId, name, sealed, updatedAt,
    );
    return { name, updated_at: updatedAt, created: !existed };
  }

  async delete(projectId: number, name: string): Promise<boolean> {
    return ((await this.db.run('DELETE FROM project_secrets WHERE project_id = ? AND name = ?', projectId, name)).changes ?? 0) > 0;
  }
}
