import type pg from 'pg';
import type { RunRow } from '../runs.js';
import type { RunnerIdentity } from '../../runs/launcher.js';

/** A run as the cluster's tables hold it: which worker has it, and whether a hub asked to cancel it. */
export interface ClusterRunRow extends RunRow {
  worker_id: string | null;
  cancel_requested: boolean;
}

/**
 * What workers and hubs share beyond the RunStore, on PostgreSQL: claiming the next startable run,
 * heartbeats, lost workers, and cancels asked for through any hub.
 */
export class ClusterQueue {
  constructor(private readonly pool: pg.Pool) {}

  /** The worker is alive (an upsert of its last_seen). */
  async heartbeat(workerId: string): Promise<void> {
    await this.pool.query('INSERT INTO workers (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET last_seen = now()', [workerId]);
  }

  /**
   * Claims the oldest run that may start (FIFO per project, none of its project running) for this
   * worker and its runner, or null. Concurrent claims skip the rows others hold (SKIP LOCKED); the
   * partial unique index refuses a second running run of a project whatever happens.
   */
  async claimNext(workerId: string, runner: RunnerIdentity): Promise<ClusterRunRow | null> {
    try {
      const { rows } = await this.pool.query<ClusterRunRow>(
        `UPDATE runs SET status = 'running', worker_id = $1, runner_pid = $2, runner_token = $3, started_at = $4
         WHERE id = (
           SELECT r.id FROM runs r
           WHERE r.status = 'pending'
             AND r.id = (SELECT min(q.id) FROM runs q WHERE q.project_id = r.project_id AND q.status IN ('pending', 'running'))
           ORDER BY r.id
           FOR UPDATE SKIP LOCKED
           LIMIT 1
         ) AND status = 'pending'
         RETURNING *`,
        [workerId, runner.pid, runner.token, new Date().toISOString()],
      );
      return rows[0] ?? null;
    } catch (error) {
      if ((error as { code?: string }).code === '23505') return null; // lost a race for the project: try again later
      throw error;
    }
  }

  /** Running runs whose worker has not been seen for `timeoutMs` (or never was). */
  async runsOfLostWorkers(timeoutMs: number): Promise<ClusterRunRow[]> {
    const { rows } = await this.pool.query<ClusterRunRow>(
      `SELECT runs.* FROM runs LEFT JOIN workers w ON w.id = runs.worker_id
       WHERE runs.status = 'running' AND runs.worker_id IS NOT NULL
         AND (w.last_seen IS NULL OR w.last_seen < now() - make_interval(secs => $1::double precision / 1000))
       ORDER BY runs.id`,
      [timeoutMs],
    );
    return rows;
  }

  /** A hub asks the run's worker to cancel it; false if it is not running. */
  async requestCancel(runId: number): Promise<boolean> {
    const { rowCount } = await this.pool.query("UPDATE runs SET cancel_requested = true WHERE id = $1 AND status = 'running'", [runId]);
    return (rowCount ?? 0) > 0;
  }

  /** This worker's running runs that a hub asked to cancel. */
  async cancelsFor(workerId: string): Promise<number[]> {
    const { rows } = await this.pool.query<{ id: number }>("SELECT id FROM runs WHERE worker_id = $1 AND status = 'running' AND cancel_requested", [workerId]);
    return rows.map((row) => row.id);
  }
}
