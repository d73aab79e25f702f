import type pg from 'pg';
import type { RunRow } from '../runs.js';
import type { RunnerIdentity } from '../../runs/launcher.js';

/** A run as the cluster's tables hold it: which worker has it, and whether a hub asked to cancel it. */
export interface ClusterRunRow extends RunRow {
  worker_id: string | null;
  cancel_requested: boolean;
  /** grows with each claim of the run (and when a hub gives it up) */
  lease_epoch: number;
  lease_expires_at: Date | null;
}

/** A run whose lease a worker holds, under its epoch. */
export interface HeldLease {
  runId: number;
  epoch: number;
}

/** `now() + ms` in SQL, `ms` at placeholder `n`. */
const inMs = (n: number) => `now() + make_interval(secs => $${n}::double precision / 1000)`;

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
   * partial unique index refuses a second running run of a project whatever happens. The claim is
   * a lease of `leaseMs` (database time) under the run's next epoch.
   */
  async claimNext(workerId: string, runner: RunnerIdentity, leaseMs: number): Promise<ClusterRunRow | null> {
    try {
      const { rows } = await this.pool.query<ClusterRunRow>(
        `UPDATE runs SET status = 'running', worker_id = $1, runner_pid = $2, runner_token = $3, started_at = $4,
           lease_epoch = lease_epoch + 1, lease_expires_at = ${inMs(5)}
         WHERE id = (
           SELECT r.id FROM runs r
           WHERE r.status = 'pending'
             AND r.id = (SELECT min(q.id) FROM runs q WHERE q.project_id = r.project_id AND q.status IN ('pending', 'running'))
           ORDER BY r.id
           FOR UPDATE SKIP LOCKED
           LIMIT 1
         ) AND status = 'pending'
         RETURNING *`,
        [workerId, runner.pid, runner.token, new Date().toISOString(), leaseMs],
      );
      return rows[0] ?? null;
    } catch (error) {
      if ((error as { code?: string }).code === '23505') return null; // lost a race for the project: try again later
      throw error;
    }
  }

  /**
   * The heartbeat and the renewal of the leases the worker holds, in one statement: each held lease
   * that is still its own (same epoch, still running) with more than `minLeftMs` left is extended to
   * `leaseMs` from the database's now(). Answers the leases renewed; any other held lease is lost.
   * (`minLeftMs`: past that point the worker has stopped the run by its own clock, so a renewal that
   * was held up in a stalled database and lands late must not bring the lease back.)
   */
  async renewLeases(workerId: string, held: readonly HeldLease[], leaseMs: number, minLeftMs = 0): Promise<HeldLease[]> {
    const { rows } = await this.pool.query<{ id: number; lease_epoch: number }>(
      `WITH heartbeat AS (INSERT INTO workers (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET last_seen = now())
       UPDATE runs SET lease_expires_at = ${inMs(4)}
       FROM unnest($2::bigint[], $3::int[]) AS held(id, epoch)
       WHERE runs.id = held.id AND runs.lease_epoch = held.epoch AND runs.worker_id = $1
         AND runs.status = 'running' AND runs.lease_expires_at > ${inMs(5)}
       RETURNING runs.id, runs.lease_epoch`,
      [workerId, held.map((lease) => lease.runId), held.map((lease) => lease.epoch), leaseMs, minLeftMs],
    );
    return rows.map((row) => ({ runId: row.id, epoch: row.lease_epoch }));
  }

  /** This worker's running runs (after a restart). */
  async runsOfWorker(workerId: string): Promise<ClusterRunRow[]> {
    return (await this.pool.query<ClusterRunRow>("SELECT * FROM runs WHERE worker_id = $1 AND status = 'running' ORDER BY id", [workerId])).rows;
  }

  /**
   * Running runs whose lease has expired by the database's clock (and runs claimed before leases
   * existed whose worker has not been seen for `leaseMs`).
   */
  async runsOfLostWorkers(leaseMs: number): Promise<ClusterRunRow[]> {
    const { rows } = await this.pool.query<ClusterRunRow>(
      `SELECT runs.* FROM runs LEFT JOIN workers w ON w.id = runs.worker_id
       WHERE runs.status = 'running' AND runs.worker_id IS NOT NULL
         AND (runs.lease_expires_at < now()
           OR (runs.lease_expires_at IS NULL AND (w.last_seen IS NULL OR w.last_seen < now() - make_interval(secs => $1::double precision / 1000))))
       ORDER BY runs.id`,
      [leaseMs],
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
