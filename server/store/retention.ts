import type { RunRow } from './runs.js';

/** The finished statuses, as the partial indexes of retention name them. */
export const FINISHED_SQL = "status IN ('completed', 'failed', 'cancelled')";

/**
 * What retention needs of the store, each an indexed query (issue 23: a project may hold a million
 * runs). Tested on SQLite by test/runs/retention.test.ts, on PostgreSQL by test/store/postgres/scale.test.ts.
 */
export interface RetentionStore {
  /**
   * Runs `work` unless another hub is doing the same (cluster: a PostgreSQL advisory lock on
   * `key` and `projectId`, held for the work's length); false, without running it, when one is.
   */
  exclusively(key: number, projectId: number, work: () => Promise<void>): Promise<boolean>;
  /** The id of the project's newest finished run past the newest `keep` finished ones; null when there are no more. */
  idPastNewest(projectId: number, keep: number): Promise<number | null>;
  /**
   * The id of the project's newest finished run (never the newest of all) at which the finished runs'
   * log sizes, summed from the newest, pass `bytes`; null when they never do.
   */
  idPastBytes(projectId: number, bytes: number): Promise<number | null>;
  /**
   * Deletes up to `limit` of the project's finished runs, oldest first: those with ids up to `maxId`,
   * or (with `finishedBefore`) those that ended before that time. Their delivered or failed webhook
   * deliveries go with them. Returns the runs deleted.
   */
  deleteFinished(projectId: number, past: { maxId: number } | { finishedBefore: string }, limit: number): Promise<RunRow[]>;
  /** Deletes up to `limit` delivered or failed deliveries last changed before `before`; returns how many. */
  pruneDeliveries(before: string, limit: number): Promise<number>;
}
