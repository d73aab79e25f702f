import type pg from 'pg';
import { FINISHED_SQL, type RetentionStore } from '../retention.js';
import type { RunRow } from '../runs.js';

/** Retention on PostgreSQL: any number of hubs share the tables; one at a time sweeps a project. */
export class PostgresRetentionStore implements RetentionStore {
  constructor(private readonly pool: pg.Pool) {}

  async exclusively(key: number, projectId: number, work: () => Promise<void>): Promise<boolean> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      // A session lock: released by the unlock below, or by PostgreSQL when this hub's connection dies.
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [key, projectId]);
      if (!rows[0].locked) return false;
      try {
        await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [key, projectId]).catch((error: unknown) => {
          broken = error as Error; // the connection is dropped below, and the lock with it
        });
      }
      return true;
    } finally {
      client.release(broken);
    }
  }

  async idPastNewest(projectId: number, keep: number): Promise<number | null> {
    const { rows } = await this.pool.query<{ id: number }>(
      `SELECT id FROM runs WHERE project_id = $1 AND ${FINISHED_SQL} ORDER BY id DESC OFFSET $2 LIMIT 1`,
      [projectId, keep],
    );
    return rows[0]?.id ?? null;
  }

  async idPastBytes(projectId: number, bytes: number): Promise<number | null> {
    // The window is computed as the index is read, newest first, and the read stops at the first row past the limit.
    const { rows } = await this.pool.query<{ id: number }>(
      `SELECT id FROM (
         SELECT id, SUM(log_size) OVER newest AS bytes, ROW_NUMBER() OVER newest AS position
         FROM runs WHERE project_id = $1 AND ${FINISHED_SQL}
         WINDOW newest AS (ORDER BY id DESC ROWS UNBOUNDED PRECEDING)
       ) AS summed WHERE position > 1 AND bytes > $2 ORDER BY id DESC LIMIT 1`,
      [projectId, bytes],
    );
    return rows[0]?.id ?? null;
  }

  async deleteFinished(projectId: number, past: { maxId: number } | { finishedBefore: string }, limit: number): Promise<RunRow[]> {
    const chosen = 'maxId' in past
      ? `SELECT id FROM runs WHERE project_id = $1 AND ${FINISHED_SQL} AND id <= $2 ORDER BY id LIMIT $3`
      : `SELECT id FROM runs WHERE project_id = $1 AND ${FINISHED_SQL} AND COALESCE(finished_at, created_at) < $2 ORDER BY COALESCE(finished_at, created_at) LIMIT $3`;
    const { rows } = await this.pool.query<RunRow>(
      // Their delivery records stay until they age out (pruneDeliveries): while they are there, an
      // event a restarted hub records again for a run removed meanwhile is a repeat, not a new delivery.
      `WITH gone AS (DELETE FROM runs WHERE id IN (${chosen}) RETURNING *)
       SELECT * FROM gone ORDER BY id`,
      [projectId, 'maxId' in past ? past.maxId : past.finishedBefore, limit],
    );
    return rows;
  }

  async pruneDeliveries(before: string, limit: number): Promise<number> {
    const result = await this.pool.query(
      `DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND updated_at < $1 ORDER BY updated_at LIMIT $2
       )`,
      [before, limit],
    );
    return result.rowCount ?? 0;
  }
}
