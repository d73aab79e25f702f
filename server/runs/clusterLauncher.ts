import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { ClusterQueue } from '../store/postgres/cluster.js';
import type { RunRow } from '../store/runs.js';
import type { Launcher, LauncherEvents, LaunchRequest } from './launcher.js';
import type { WatchedRunner } from './runnerWatch.js';

const LOST_SWEEP_MS = 1000;
/** A sweep's answer slower than this may hide an outage of this hub's connection: "up" counts again from its answer. */
const SLOW_ANSWER_MS = 1000;

/**
 * A hub's launcher in cluster mode: it starts nothing (workers claim pending runs themselves), passes
 * cancels to the run's worker through the database, and fails the runs whose worker's lease expired
 * by the database's clock ("worker lost"), so their projects' queues move on. It gives no run up
 * before its own connection to the database has answered, quickly and without a failure, for a
 * whole lease time: after its own outage it first lets workers renew.
 */
export class ClusterLauncher implements Launcher {
  private readonly sweep: NodeJS.Timeout;
  private sweeping = false;
  /** performance.now() since when this hub's database connection has been up; null while down */
  private upSince: number | null = null;

  /**
   * `fenceLog`: refuses appends to the run's log under epochs before `epoch` (its stream), before its
   * end is recorded; `givenUp`: a lost worker's run was ended (its log is only in Redis: archive it)
   */
  constructor(private readonly queue: ClusterQueue, private readonly events: LauncherEvents, private readonly workerTimeoutMs: number, private readonly log: pino.Logger, private readonly fenceLog?: (runId: number, epoch: number) => Promise<void>, private readonly givenUp?: (runId: number) => void) {
    this.sweep = setInterval(() => {
      this.failLostRuns().catch((error: unknown) => log.warn({ err: error }, 'looking for lost workers failed'));
    }, LOST_SWEEP_MS);
    this.sweep.unref();
  }

  async launch(_request: LaunchRequest): Promise<RunRow | null> {
    return null; // stays pending: a worker claims it
  }

  cancel(runId: number): boolean {
    this.queue.requestCancel(runId).catch((error: unknown) => this.log.warn({ err: error, run_id: runId }, 'asking the worker to cancel failed'));
    return true;
  }

  reattach(): void {
    // the run's worker follows it
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
  }

  private async failLostRuns(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.sweepOnce();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepOnce(): Promise<void> {
    const sent = performance.now();
    let lost;
    try {
      lost = await this.queue.runsOfLostWorkers(this.workerTimeoutMs);
    } catch (error) {
      this.upSince = null;
      throw error;
    }
    const answered = performance.now();
    if (answered - sent > SLOW_ANSWER_MS) this.upSince = answered;
    else this.upSince ??= sent;
    if (answered - this.upSince < this.workerTimeoutMs) return;
    for (const run of lost) {
      const epoch = run.lease_epoch;
      // Nothing more reaches its log under the lost lease (bounded: Redis away must not hold the queue up).
      if (this.fenceLog) await withDeadline(this.fenceLog(run.id, epoch + 1), LOST_SWEEP_MS).catch((error: unknown) => this.log.warn({ err: error, run_id: run.id }, 'fencing the log of a lost run failed'));
      const runner: WatchedRunner = {
        runId: run.id,
        projectId: run.project_id,
        pid: run.runner_pid ?? 0,
        token: '',
        stateFile: '',
        lost: `worker lost: ${run.worker_id} did not renew its lease on the run within ${Math.round(this.workerTimeoutMs / 100) / 10} s (by the database's clock)`,
        markerWritten: true, // its log is on the worker's machine
        // Given up only if that lease is still the run's and has expired: a worker's renewal or end meanwhile wins.
        fence: { workerId: run.worker_id!, epoch, expired: true },
      };
      await this.events.onEnded(runner);
      this.givenUp?.(run.id);
    }
  }
}

/** `promise`, or a rejection after `ms` (the promise goes on; its outcome is ignored). */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => {}); // lost to the deadline: nobody waits for it
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
