import type pino from 'pino';
import type { ClusterQueue } from '../store/postgres/cluster.js';
import type { RunRow } from '../store/runs.js';
import type { Launcher, LauncherEvents, LaunchRequest } from './launcher.js';
import type { WatchedRunner } from './runnerWatch.js';

const LOST_SWEEP_MS = 1000;

/**
 * A hub's launcher in cluster mode: it starts nothing (workers claim pending runs themselves), passes
 * cancels to the run's worker through the database, and fails the runs of workers that stopped
 * heartbeating ("worker lost"), so their projects' queues move on.
 */
export class ClusterLauncher implements Launcher {
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly queue: ClusterQueue, private readonly events: LauncherEvents, private readonly workerTimeoutMs: number, private readonly log: pino.Logger) {
    this.sweep = setInterval(() => void this.failLostRuns().catch((error: unknown) => log.warn({ err: error }, 'looking for lost workers failed')), LOST_SWEEP_MS);
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
    for (const run of await this.queue.runsOfLostWorkers(this.workerTimeoutMs)) {
      const runner: WatchedRunner = {
        runId: run.id,
        projectId: run.project_id,
        pid: run.runner_pid ?? 0,
        token: '',
        stateFile: '',
        lost: `worker lost: ${run.worker_id} was not heard from for ${Math.round(this.workerTimeoutMs / 1000)} s`,
        markerWritten: true, // its log is on the worker's machine
      };
      await this.events.onEnded(runner);
    }
  }
}
