import type pino from 'pino';
import type { Config } from '../config.js';
import { runFiles } from '../paths.js';
import type { RunFence, RunRow } from '../store/runs.js';
import { killProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { TOKEN_VARIABLE } from '../../pipeline-runner/state.js';
import { RunnerStartError, type Launcher, type LauncherEvents, type LaunchRequest, type RunnerIdentity } from './launcher.js';
import type { RunPlan } from './plan.js';
import type { Project } from '../store/projects.js';
import { RunnerPool } from './runnerPool.js';
import { isRunnerAlive, RunnerWatch, type WatchedRunner } from './runnerWatch.js';
import type { LeaseWatchSpec } from '../../pipeline-runner/leaseWatch.js';
import { assignRun, runnerSpawner } from './spawnRunner.js';
import { SpawnThread } from './spawnThread.js';

/** A run claimed for a runner, with what it needs to start. */
export interface ClaimedRun {
  run: RunRow;
  project: Project;
  plan: RunPlan;
  /** the worker's lease on it (cluster mode): every write about the run carries it */
  fence?: RunFence;
  /** the project's secrets for its steps, when the claimer read them already (a worker: before it checks its lease) */
  secrets?: Record<string, string>;
  /** what its runner watches to stop the steps itself when the worker stops renewing its lease (cluster mode) */
  lease?: LeaseWatchSpec;
}

/** Scans for processes carrying a run's token at most this often when stopping it (forks meanwhile). */
const STOP_SCANS = 3;

/**
 * Runners on this machine, started from a thread of their own (SpawnThread) so forks never block
 * the event loop: one ahead of time (RunnerPool), handed its run on stdin, then followed through its
 * state file and its exit (RunnerWatch) until its end is recorded.
 */
export class LocalLauncher implements Launcher {
  private readonly pool: RunnerPool;
  private readonly watch: RunnerWatch;

  private readonly thread = new SpawnThread();

  /**
   * `runnerCommand`: how a runner starts (tests give one that cannot). `secretsOf`: a project's
   * secrets by name, opened for its run's steps (and for the runner to mask them in the log).
   */
  constructor(
    private readonly config: Config,
    private readonly events: LauncherEvents,
    private readonly log: pino.Logger,
    runnerCommand?: readonly string[],
    private readonly secretsOf: (projectId: number) => Promise<Record<string, string>> = async () => ({}),
  ) {
    this.pool = new RunnerPool(runnerSpawner(this.thread, runnerCommand));
    this.pool.prime();
    this.watch = new RunnerWatch({
      onProgress: (runner, state) => events.onProgress(runner, state),
      onStateFault: (runner, reason) => log.warn({ run_id: runner.runId, reason }, 'the runner state file is unreadable; following the runner by its process'),
      onEnded: (runner) => events.onEnded(runner),
      onSettleError: (runner, error) => log.error({ err: error, run_id: runner.runId, attempt: runner.failures }, 'recording the end of a run failed; trying again'),
    });
  }

  async launch({ project, plan, claim }: LaunchRequest): Promise<RunRow | null> {
    return this.launchNext(async (runner) => {
      const run = await claim(runner);
      return run && { run, project, plan };
    });
  }

  /**
   * Readies a runner, then claims a run for it (`claimNext`: a given run, or a worker's next one);
   * with nothing claimed the runner stays warm for the next launch. Resolves to the claimed run.
   */
  async launchNext(claimNext: (runner: RunnerIdentity) => Promise<ClaimedRun | null>): Promise<RunRow | null> {
    let idle;
    try {
      idle = await this.pool.take();
    } catch (error) {
      throw new RunnerStartError((error as Error).message, { cause: error });
    }
    let claimed: ClaimedRun | null = null;
    try {
      claimed = await claimNext({ pid: idle.pid, token: idle.token });
    } finally {
      if (!claimed) this.pool.putBack(idle);
    }
    if (!claimed) return null;
    const { run, project, plan } = claimed;
    const runner: WatchedRunner = {
      runId: run.id,
      projectId: project.id,
      pid: idle.pid,
      token: idle.token,
      stateFile: runFiles(this.config.logsDir, project.id, run.id).state,
      process: idle,
      fence: claimed.fence,
    };
    try {
      assignRun(idle, this.config, project, run, plan, claimed.secrets ?? (await this.secretsOf(project.id)), claimed.lease);
    } catch (error) {
      this.log.warn({ err: error, run_id: run.id }, 'the run could not be handed to its runner');
      idle.send(null);
      runner.startError = (error as Error).message;
      // Recorded now when the database lets it; else the watch records it, trying until it does.
      if (await this.events.onEnded(runner).then(() => true, () => false)) return run;
    }
    this.watch.add(runner);
    return run;
  }

  cancel(runId: number): boolean {
    const runner = this.watch.get(runId);
    if (!runner) return false;
    this.watch.cancel(runner, this.config.cancelGraceMs);
    return true;
  }

  /**
   * Kills the run's runner and everything it started (every process carrying its token) at once,
   * and records nothing more about it: its lease is lost (cluster mode). False if it follows no such run.
   */
  stop(runId: number): boolean {
    const runner = this.watch.get(runId);
    if (!runner) return false;
    runner.leaseLost = true;
    if (runner.token) {
      for (let scan = 0; scan < STOP_SCANS && killProcessesWithEnv(TOKEN_VARIABLE, runner.token) > 0; scan++);
    }
    this.watch.check(runner);
    return true;
  }

  /** `fence`: the worker's lease on the run (cluster mode). */
  reattach(run: RunRow, fence?: RunFence): void {
    const runner: WatchedRunner = {
      runId: run.id,
      projectId: run.project_id,
      pid: run.runner_pid ?? 0,
      token: run.runner_token ?? '',
      stateFile: runFiles(this.config.logsDir, run.project_id, run.id).state,
      fence,
    };
    if (isRunnerAlive(runner.pid, runner.token)) this.log.info({ run_id: run.id, pid: runner.pid }, 're-attached to a running runner');
    this.watch.add(runner);
    this.watch.check(runner);
  }

  close(): Promise<void> {
    this.pool.close();
    this.watch.close();
    return this.thread.close();
  }
}
