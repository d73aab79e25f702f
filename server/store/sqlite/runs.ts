import type { Db } from './db.js';
import { WRITABLE_RUN_COLUMNS, countsOf, type NewRun, type RunChanges, type RunRow, type RunStatus, type RunStore } from '../runs.js';


/** Runs on SQLite: one running run per project is a partial unique index (migration 003). */
export class SqliteRunStore implements RunStore {
  constructor(private readonly db: Db) {}

  get(id: number): Promise<RunRow | undefined> {
    return this.db.get<RunRow>('SELECT * FROM runs WHERE id = ?', id);
  }

  listForProject(projectId: number, limit: number, before?: number): Promise<RunRow[]> {
    return this.db.all<RunRow[]>(
      'SELECT * FROM runs WHERE project_id = ? AND id < ? ORDER BY id DESC LIMIT ?',
      projectId, before ?? Number.MAX_SAFE_INTEGER, limit,
    );
  }

  async ownedOf(projectId: number, runIds: readonly number[]): Promise<Set<number>> {
    if (runIds.length === 0) return new Set();
    const rows = await this.db.all<{ id: number }[]>(`SELECT id FROM runs WHERE project_id = ? AND id IN (${runIds.map(() => '?').join(', ')})`, projectId, ...runIds);
    return new Set(rows.map((row) => row.id));
  }

  /** Active runs of every project, oldest first (the queue order). */
  listActive(): Promise<RunRow[]> {
    return this.db.all<RunRow[]>("SELECT * FROM runs WHERE status IN ('pending', 'running') ORDER BY id");
  }

  listChangedSince(since: string): Promise<RunRow[]> {
    return this.db.all<RunRow[]>('SELECT * FROM runs WHERE started_at >= ? OR finished_at >= ? ORDER BY id', since, since);
  }

  listActiveForProject(projectId: number): Promise<RunRow[]> {
    return this.db.all<RunRow[]>("SELECT * FROM runs WHERE project_id = ? AND status IN ('pending', 'running') ORDER BY id", projectId);
  }

  async countByStatus(): Promise<Record<RunStatus, number>> {
    return countsOf(await this.db.all<{ status: string; count: number }[]>('SELECT status, COUNT(*) AS count FROM runs GROUP BY status'));
  }

  async insert(run: NewRun): Promise<RunRow> {
    const result = await this.db.run(
      'INSERT INTO runs (project_id, scope, status, triggered_by, progress_total, plan, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      run.project_id, run.scope, run.status, run.triggered_by, run.progress_total, run.plan, new Date().toISOString(),
    );
    return (await this.get(result.lastID!))!;
  }

  /** One statement: SQLite runs one writer at a time, so the check and the insert cannot be split. */
  async insertIfIdle(run: NewRun): Promise<RunRow | null> {
    const result = await this.db.run(
      `INSERT INTO runs (project_id, scope, status, triggered_by, progress_total, plan, created_at)
       SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM runs WHERE project_id = ? AND status IN ('pending', 'running'))`,
      run.project_id, run.scope, run.status, run.triggered_by, run.progress_total, run.plan, new Date().toISOString(), run.project_id,
    );
    return result.changes ? (await this.get(result.lastID!))! : null;
  }

  /**
   * Marks a pending run running with the runner that will carry it out, only if it is still
   * pending: the one write that decides a run starts, so it can never start twice.
   */
  async claim(id: number, changes: RunChanges): Promise<RunRow | null> {
    try {
      return await this.updateIf(id, { ...changes, status: 'running' }, "status = 'pending'");
    } catch (error) {
      // Another run of the project is running: the index refuses a second one.
      const { code, message } = error as { code?: string; message?: string };
      if (code === 'SQLITE_CONSTRAINT' && /UNIQUE/.test(message ?? '')) return null;
      throw error;
    }
  }

  /** Records a terminal state, only if the run is still active: settling twice changes nothing. */
  async settle(id: number, changes: RunChanges): Promise<RunRow | null> {
    return this.updateIf(id, changes, "status IN ('pending', 'running')");
  }

  private async updateIf(id: number, changes: RunChanges, condition: string): Promise<RunRow | null> {
    const keys = Object.keys(changes).filter((key) => WRITABLE_RUN_COLUMNS.has(key));
    const result = await this.db.run(
      `UPDATE runs SET ${keys.map((key) => `${key} = ?`).join(', ')} WHERE id = ? AND ${condition}`,
      ...keys.map((key) => (changes as Record<string, unknown>)[key]), id,
    );
    return (result.changes ?? 0) > 0 ? (await this.get(id))! : null;
  }

  async update(id: number, changes: RunChanges): Promise<RunRow> {
    const keys = Object.keys(changes).filter((key) => WRITABLE_RUN_COLUMNS.has(key));
    if (keys.length > 0) {
      await this.db.run(
        `UPDATE runs SET ${keys.map((key) => `${key} = ?`).join(', ')} WHERE id = ?`,
        ...keys.map((key) => (changes as Record<string, unknown>)[key]), id,
      );
    }
    return (await this.get(id))!;
  }

  async delete(id: number): Promise<void> {
    await this.db.run('DELETE FROM runs WHERE id = ?', id);
  }
}
