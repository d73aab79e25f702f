import type pg from 'pg';
import type { SealedSecret, SecretName, SecretStore } from '../secrets.js';

export class PostgresSecretStore implements SecretStore {
  constructor(private readonly pool: pg.Pool) {}

  async list(projectId: number): Promise<SecretName[]> {
    return (await this.pool.query<SecretName>('SELECT name, updated_at FROM project_secrets WHERE project_id = $1 ORDER BY name', [projectId])).rows;
  }

  async listSealed(projectId: number): Promise<SealedSecret[]> {
    return (await this.pool.query<SealedSecret>('SELECT name, sealed, updated_at FROM project_secrets WHERE project_id = $1 ORDER BY name', [projectId])).rows;
  }

  async put(projectId: number, name: string, sealed: string): Promise<SecretName & { created: boolean }> {
    // xmax = 0: the row was inserted, not updated (PostgreSQL's way to tell an upsert's outcome).
    const { rows } = await this.pool.query<{ updated_at: string; created: boolean }>(
      `INSERT INTO project_secrets (project_id, name, sealed, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (project_id, name) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = EXCLUDED.updated_at
       RETURNING updated_at, (xmax = 0) AS created`,
      [projectId, name, sealed, new Date().toISOString()],
    );
    return { name, updated_at: rows[0].updated_at, created: rows[0].created };
  }

  async delete(projectId: number, name: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM project_secrets WHERE project_id = $1 AND name = $2', [projectId, name])).rowCount ?? 0) > 0;
  }
}
