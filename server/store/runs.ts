import type { Run, RunStatus } from '../wire.js';

export type { RunStatus };
/** Every status, in lifecycle order (checked against the wire type both ways). */
export const RUN_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const satisfies readonly RunStatus[];
type AllStatusesListed = RunStatus extends (typeof RUN_STATUSES)[number] ? true : never;
const allStatusesListed: AllStatusesListed = true;
void allStatusesListed;
export const ACTIVE_STATUSES: readonly RunStatus[] = ['pending', 'running'];
/** Counts per status from rows of (status, count), with every status present. */
export function countsOf(rows: { status: string; count: number | string }[]): Record<RunStatus, number> {
  const counts = Object.fromEntries(RUN_STATUSES.map((status) => [status, 0])) as Record<RunStatus, number>;
  for (const row of rows) if (Object.hasOwn(counts, row.status)) counts[row.status as RunStatus] = Number(row.count);
  return counts;
}
export const isTerminal = (status: RunStatus) => !ACTIVE_STATUSES.includes(status);

/** A run as stored: the public run (without its log path, derived from ids) plus what stays inside the server. */
export interface RunRow extends Omit<Run, 'log_path' | 'steps'> {
  /** the steps as the runner last recorded them (JSON); null before it started */
  steps: string | null;
  runner_pid: number | null;
  runner_token: string | null;
  /** the steps it carries out, as JSON (see runs/plan.ts) */
  plan: string | null;
}

export type NewRun = Pick<RunRow, 'project_id' | 'scope' | 'status' | 'triggered_by' | 'progress_total' | 'plan'>;

export type RunChanges = Partial<Omit<RunRow, 'id' | 'project_id' | 'created_at'>>;

/** The columns a change may set (anything else in a RunChanges is ignored, never interpolated). */
export const WRITABLE_RUN_COLUMNS: ReadonlySet<string> = new Set([
  'scope', 'status', 'triggered_by', 'started_at', 'finished_at', 'exit_code', 'signal', 'error_message',
  'current_step', 'progress_current', 'progress_total', 'log_size', 'runner_pid', 'runner_token', 'steps',
]);

/**
 * A worker's lease on a run (cluster mode): a write that carries it is refused (0 rows: the lease is
 * lost) unless `workerId` still holds the run under `epoch` and the lease has not expired by the
 * database's clock. With `expired`, the write is a hub giving the run up: it goes through only once
 * that very lease has expired, and it ends the lease (the epoch moves on). Embedded mode has no
 * leases: its store ignores a fence.
 */
export interface RunFence {
  workerId: string;
  epoch: number;
  expired?: boolean;
}

/** Runs and the queue. Implementations must pass test/store/runStore.contract.ts. */
export interface RunStore {
  get(id: number): Promise<RunRow | undefined>;
  /** newest first, paged by id */
  listForProject(projectId: number, limit: number, before?: number): Promise<RunRow[]>;
  /** which of `runIds` are the project's runs (the run files the store owns); asked in batches, never every run at once */
  ownedOf(projectId: number, runIds: readonly number[]): Promise<Set<number>>;
  /** active runs of every project, oldest first (the queue order) */
  listActive(): Promise<RunRow[]>;
  listActiveForProject(projectId: number): Promise<RunRow[]>;
  /** runs that started or finished at `since` or later (ISO 8601), oldest first: events a hub may have missed */
  listChangedSince(since: string): Promise<RunRow[]>;
  /** how many runs have each status (every status present, 0 when none) */
  countByStatus(): Promise<Record<RunStatus, number>>;
  insert(run: NewRun): Promise<RunRow>;
  /**
   * Inserts only if the project has no active run, decided atomically by the database (so two hubs
   * starting one project at once cannot both get in); null when it has one.
   */
  insertIfIdle(run: NewRun): Promise<RunRow | null>;
  /**
   * pending → running with the runner that carries it out, only if it is still pending and no other
   * run of its project is running (the store enforces one running run per project); else null.
   */
  claim(id: number, changes: RunChanges): Promise<RunRow | null>;
  /** Records a terminal state only if the run is still active; else null (settling twice changes nothing). */
  settle(id: number, changes: RunChanges, fence?: RunFence): Promise<RunRow | null>;
  update(id: number, changes: RunChanges): Promise<RunRow>;
  /** Under a fence: null when it refused the write. */
  update(id: number, changes: RunChanges, fence: RunFence | undefined): Promise<RunRow | null>;
  delete(id: number): Promise<void>;
}
