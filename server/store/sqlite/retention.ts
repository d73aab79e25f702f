import type { Db } from './db.js';
import { FINISHED_SQL, type RetentionStore } from '../retention.js';
import type { RunRow } from '../runs.js';

/** Retention on SQLite: one hub owns the file, so nothing to take turns with. */
export class SqliteRetentionStore implements RetentionStore {
  constructor(private readonly db: Db) {}

  async exclusively(_key: number, _projectId: number, work: () => Promise<void>): Promise<boolean> {
    await work();
    return true;
  }

  async idPastNewest(projectId: number, keep: number): Promise<number | null> {
    const row = await this.db.get<{ id: number }>(`SELECT id FROM runs WHERE project_id = ? AND ${FINISHED_SQL} ORDER BY id DESC LIMIT 1 OFFSET ?`, projectId, keep);
    return row?.id ?? null;
  }

  async idPastBytes(projectId: number, bytes: number): Promise<number | null> {
    const row = await this.db.get<{ id: number }>(
      `SELECT id FROM (
         SELECT id, SUM(log_size) OVER newest AS bytes, ROW_NUMBER() OVER newest AS position
         FROM runs WHERE project_id = ? AND ${FINISHED_SQL}
         WINDOW newest AS (ORDER BY id DESC ROWS UNBOUNDED PRECEDING)
       ) WHERE position > 1 AND bytes > ? ORDER BY id DESC LIMIT 1`,
      projectId, bytes,
    );
    return row?.id ?? null;
  }

  /**
   * Statements in turn, no transaction (the connection is shared by every caller): finished runs never
   * change, so the chosen ones are still there to delete.
   */
  async deleteFinished(projectId: number, past: { maxId: number } | { finishedBefore: string }, limit: number): Promise<RunRow[]> {
    const where = 'maxId' in past
      ? `project_id = ? AND ${FINISHED_SQL} AND id <= ? ORDER BY id LIMIT ?`
      : `project_id = ? AND ${FINISHED_SQL} AND COALESCE(finished_at, created_at) < ? ORDER BY COALESCE(finished_at, created_at) LIMIT ?`;
    const runs = await this.db.all<RunRow[]>(`SELECT * FROM runs WHERE ${where}`, projectId, 'maxId' in past ? past.maxId : past.finishedBefore, limit);
    if (runs.length === 0) return runs;
    const ids = runs.map((run) => run.id);
    const marks = ids.map(() => '?').join(', ');
    // Their delivery records stay until they age out (pruneDeliveries): while they are there, an event a
    // restarted hub records again for a run removed meanwhile (its recovery listed the run just before)
    // is a repeat, not a new delivery sent under a new id (the soak caught that).
    await this.db.run(`DELETE FROM runs WHERE id IN (${marks})`, ...ids);
    return runs.sort((a, b) => a.id - b.id);
  }

  async pruneDeliveries(before: string, limit: number): Promise<number> {
    const result = await this.db.run(
      `DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND updated_at < ? ORDER BY updated_at LIMIT ?
       )`,
      before, limit,
    );
    return result.changes ?? 0;
  }
}
