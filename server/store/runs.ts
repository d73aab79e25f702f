import type { Db } from './db.js';

export const RUN_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const ACTIVE_STATUSES: readonly RunStatus[] = ['pending', 'running'];
export const isTerminal = (status: RunStatus) => !ACTIVE_STATUSES.includes(status);

export interface RunRow {
  id: number;
  project_id: number;
  scope: string;
  status: RunStatus;
  triggered_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  signal: string | null;
  error_message: string | null;
  current_step: string | null;
  progress_current: number;
  progress_total: number;
  log_size: number;
  runner_pid: number | null;
  runner_token: string | null;
}

export type RunChanges = Partial<Omit<RunRow, 'id' | 'project_id' | 'created_at'>>;

const COLUMNS = new Set<string>([
  'scope', 'status', 'triggered_by', 'started_at', 'finished_at', 'exit_code', 'signal', 'error_message',
  'current_step', 'progress_current', 'progress_total', 'log_size', 'runner_pid', 'runner_token',
]);

export class RunStore {
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

  /** Active runs of every project, oldest first (the queue order). */
  listActive(): Promise<RunRow[]> {
    return this.db.all<RunRow[]>("SELECT * FROM runs WHERE status IN ('pending', 'running') ORDER BY id");
  }

  listActiveForProject(projectId: number): Promise<RunRow[]> {
    return this.db.all<RunRow[]>("SELECT * FROM runs WHERE project_id = ? AND status IN ('pending', 'running') ORDER BY id", projectId);
  }

  async insert(run: Pick<RunRow, 'project_id' | 'scope' | 'status' | 'triggered_by' | 'progress_total'>): Promise<RunRow> {
    const result = await this.db.run(
      'INSERT INTO runs (project_id, scope, status, triggered_by, progress_total, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      run.project_id, run.scope, run.status, run.triggered_by, run.progress_total, new Date().toISOString(),
    );
    return (await this.get(result.lastID!))!;
  }

  async update(id: number, changes: RunChanges): Promise<RunRow> {
    const keys = Object.keys(changes).filter((key) => COLUMNS.has(key));
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
