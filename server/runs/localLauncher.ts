import type pino from 'pino';
import type { Config } from '../config.js';
import { runFiles } from '../paths.js';
import type { RunRow } from '../store/runs.js';
import { RunnerStartError, type Launcher, type LauncherEvents, type LaunchRequest } from './launcher.js';
import { RunnerPool } from './runnerPool.js';
import { isRunnerAlive, RunnerWatch, type WatchedRunner } from './runnerWatch.js';
import { assignRun, runnerSpawner } from './spawnRunner.js';
import { SpawnThread } from './spawnThread.js';

/**
 * Runners on this machine, started from a thread of their own (SpawnThread) so forks never block
 * the event loop: one ahead of time (RunnerPool), handed its run on stdin, then followed through its
 * state file and its exit (RunnerWatch) until its end is recorded.
 */
export class LocalLauncher implements Launcher {
  private readonly pool: RunnerPool;
  private readonly watch: RunnerWatch;

  private readonly thread = new SpawnThread();

  /** `runnerCommand`: how a runner starts (tests give one that cannot). */
  constructor(private readonly config: Config, private readonly events: LauncherEvents, private readonly log: pino.Logger, runnerCommand?: readonly string[]) {
    this.pool = new RunnerPool(runnerSpawner(this.thread, runnerCommand));
    this.pool.prime();
    this.watch = new RunnerWatch({
      onProgress: (runner, state) => events.onProgress(runner, state),
      onStateFault: (runner, reason) => log.warn({ run_id: runner.runId, reason }, 'the runner state file is unreadable; following the runner by its process'),
      onEnded: (runner) => events.onEnded(runner),
      onSettleError: (runner, error) => log.error({ err: error, run_id: runner.runId, attempt: runner.failures }, 'recording the end of a run failed; trying again'),
    });
  }

  async launch({ run, project, plan, claim }: LaunchRequest): Promise<RunRow | null> {
    let idle;
    try {
      idle = await this.pool.take();
    } catch (error) {
      throw new RunnerStartError((error as Error).message, { cause: error });
    }
    let started: RunRow | null;
    try {
      started = await claim({ pid: idle.pid, token: idle.token });
    } finally {
      if (!started!) idle.send(null); // an idle runner given no run exits quietly
    }
    if (!started) return null;
    const runner: WatchedRunner = {
      runId: run.id,
      projectId: project.id,
      pid: idle.pid,
      token: idle.token,
      stateFile: runFiles(this.config.logsDir, project.id, run.id).state,
      process: idle,
    };
    try {
      assignRun(idle, this.config, project, started, plan);
    } catch (error) {
      this.log.warn({ err: error, run_id: run.id }, 'the run could not be handed to its runner');
      idle.send(null);
      runner.startError = (error as Error).message;
      // Recorded now when the database lets it; else the watch records it, trying until it does.
      if (await this.events.onEnded(runner).then(() => true, () => false)) return started;
    }
    this.watch.add(runner);
    return started;
  }

  cancel(runId: number): boolean {
    const runner = this.watch.get(runId);
    if (!runner) return false;
    this.watch.cancel(runner, this.config.cancelGraceMs);
    return true;
  }

  reattach(run: RunRow): void {
    const runner: WatchedRunner = {
      runId: run.id,
      projectId: run.project_id,
      pid: run.runner_pid ?? 0,
      token: run.runner_token ?? '',
      stateFile: runFiles(this.config.logsDir, run.project_id, run.id).state,
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
