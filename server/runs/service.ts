import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type pino from 'pino';
import type { Config } from '../config.js';
import { conflict, badRequest, HubError, notFound } from '../errors.js';
import { runFiles } from '../paths.js';
import type { Pipelines } from '../pipelines/load.js';
import type { Project, ProjectStore } from '../store/projects.js';
import { isTerminal, type RunChanges, type RunRow, type RunStore } from '../store/runs.js';
import { killProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { readStateFile, type RunnerState } from '../../pipeline-runner/state.js';
import { isRunnerAlive, RunnerWatch, type WatchedRunner } from './runnerWatch.js';
import { runnerOutcome } from './runnerOutcome.js';
import { assignRun, TOKEN_VARIABLE, type SpawnRunner } from './spawnRunner.js';
import { RunnerPool } from './runnerPool.js';
import { KeyedLock } from './keyedLock.js';
import { parsePlan, planRun } from './plan.js';
import { moveAsideOrphanedLogs } from './orphanedLogs.js';

export interface RunServiceEvents {
  /** A run was created or its status, step or progress changed. */
  run: [RunRow];
}

export interface StartRequest {
  scope: string;
  triggeredBy: string;
  ifBusy: 'reject' | 'queue';
}

/** Starting a project's next queued run failed (database busy): tried again after this, doubling. */
const START_RETRY_FIRST_MS = 500;
const START_RETRY_MAX_MS = 10_000;
/** How long after the cancel grace a runner that has not ended is killed outright. */
const CANCEL_BACKSTOP_MARGIN_MS = 3000;

/** Start, cancel, queue and re-attach runs; the only writer of run records. */
export class RunService extends EventEmitter<RunServiceEvents> {
  private readonly watch: RunnerWatch;
  private readonly projectLock = new KeyedLock<number>();
  private readonly cancelTimers = new Map<number, NodeJS.Timeout>();
  private readonly startRetries = new Map<number, NodeJS.Timeout>();
  private readonly pool: RunnerPool;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly pipelines: Pipelines,
    private readonly projects: ProjectStore,
    private readonly runs: RunStore,
    private readonly log: pino.Logger,
    spawnRunner?: SpawnRunner,
  ) {
    super();
    this.pool = new RunnerPool(spawnRunner);
    this.watch = new RunnerWatch({
      onProgress: (runner, state) => this.runnerOnProgress(runner, state),
      onStateFault: (runner, reason) => this.log.warn({ run_id: runner.runId, reason }, 'the runner state file is unreadable; following the runner by its process'),
      onEnded: (runner) => this.runnerOnEnded(runner),
      onSettleError: (runner, error) => this.log.error({ err: error, run_id: runner.runId, attempt: runner.failures }, 'recording the end of a run failed; trying again'),
    });
  }

  async start(project: Project, request: StartRequest): Promise<RunRow> {
    const pipeline = this.pipelines.get(project.pipeline);
    if (!pipeline) throw new HubError(409, 'pipeline_missing', `Project ${project.id} uses pipeline "${project.pipeline}", which the pipelines file no longer defines`);
    if (!Object.hasOwn(pipeline.scopes, request.scope)) {
      const valid = Object.keys(pipeline.scopes);
      throw badRequest('invalid_scope', `Unknown scope ${JSON.stringify(request.scope)} for pipeline "${pipeline.name}"; valid scopes: ${valid.join(', ')}`, { field: 'scope', valid_scopes: valid });
    }
    return this.projectLock.run(project.id, async () => {
      // Deleted while this request waited for the lock.
      if (!(await this.projects.get(project.id))) throw notFound('Project', project.id);
      const active = await this.runs.listActiveForProject(project.id);
      if (active.length > 0 && request.ifBusy !== 'queue') {
        const current = active.find((run) => run.status === 'running') ?? active[0];
        throw conflict('run_active', `Project ${project.id} already has an active run (${current.id}); send "if_busy": "queue" to queue this one`, { active_run_id: current.id });
      }
      const plan = planRun(pipeline, request.scope);
      const run = await this.runs.insert({
        project_id: project.id,
        scope: request.scope,
        status: 'pending',
        triggered_by: request.triggeredBy,
        progress_total: plan.length,
        plan: JSON.stringify(plan),
      });
      this.emit('run', run);
      if (active.length > 0) return run;
      try {
        return await this.launch(project, run);
      } catch (error) {
        // Recorded but not started (database busy): it starts as soon as the database lets it.
        this.log.error({ err: error, run_id: run.id }, 'a run could not be started yet; trying again');
        this.scheduleStartNext(project.id, START_RETRY_FIRST_MS);
        return (await this.runs.get(run.id).catch(() => undefined)) ?? run;
      }
    });
  }

  /** Cancels a pending or running run; a finished run is a conflict. */
  async cancel(run: RunRow): Promise<RunRow> {
    return this.projectLock.run(run.project_id, async () => {
      const current = (await this.runs.get(run.id))!;
      if (isTerminal(current.status)) throw conflict('run_finished', `Run ${run.id} has already ended (${current.status})`, { status: current.status });
      if (current.status === 'pending') {
        const cancelled = await this.finish(current, { status: 'cancelled', error_message: 'Cancelled before it started' });
        return cancelled ?? (await this.runs.get(run.id))!;
      }
      const runner = this.watch.get(run.id);
      if (runner && !this.cancelTimers.has(run.id) && !this.watch.exitOf(runner)) {
        runner.cancelRequested = true;
        this.signalRunner(runner, 'SIGTERM');
        // Backstop: a runner that does not end within the grace is killed with everything it started.
        const timer = setTimeout(() => {
          this.cancelTimers.delete(run.id);
          this.signalRunner(runner, 'SIGKILL');
          runner.exited ??= { code: null, signal: 'SIGKILL' };
          this.watch.check(runner);
        }, this.config.cancelGraceMs + CANCEL_BACKSTOP_MARGIN_MS);
        timer.unref();
        this.cancelTimers.set(run.id, timer);
      }
      return current;
    });
  }

  /** Deletes a project with its runs, logs and outputs, under its lock so no run starts meanwhile. */
  async deleteProject(project: Project): Promise<void> {
    await this.projectLock.run(project.id, async () => {
      const active = await this.runs.listActiveForProject(project.id);
      if (active.length > 0) throw conflict('project_busy', `Project ${project.id} has an active run (${active[0].id}); cancel it first`, { active_run_id: active[0].id });
      if (!(await this.projects.delete(project.id))) throw notFound('Project', project.id);
      fs.rmSync(path.join(this.config.logsDir, String(project.id)), { recursive: true, force: true });
      fs.rmSync(path.join(this.config.dataDir, 'outputs', String(project.id)), { recursive: true, force: true });
    });
  }

  /**
   * After a restart: follow every running run's runner again. The watch re-attaches to live ones
   * (pid + token) and settles the ones that ended meanwhile; then queued runs start.
   */
  async recover(): Promise<void> {
    moveAsideOrphanedLogs(this.config.logsDir, await this.runs.listOwnedFiles(), this.log);
    this.pool.prime();
    for (const run of await this.runs.listActive()) {
      if (run.status !== 'running') continue;
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
    const projectIds = new Set((await this.runs.listActive()).map((run) => run.project_id));
    for (const projectId of projectIds) this.scheduleStartNext(projectId, 0);
  }

  /** Stops following runners; they keep running and are re-attached on the next start. */
  close(): void {
    this.closed = true;
    for (const timer of [...this.cancelTimers.values(), ...this.startRetries.values()]) clearTimeout(timer);
    this.cancelTimers.clear();
    this.startRetries.clear();
    this.pool.close();
    this.watch.close();
  }

  /**
   * Starts a pending run (called under its project's lock). The claim (pending → running, with the
   * runner's pid and token) is written before the runner gets the run, so a run starts at most once
   * and a restart finds its runner.
   */
  private async launch(project: Project, run: RunRow): Promise<RunRow> {
    const pipeline = this.pipelines.get(project.pipeline);
    const plan = parsePlan(run.plan) ?? (pipeline && planRun(pipeline, run.scope));
    if (!plan) return (await this.finish(run, { status: 'failed', error_message: `Pipeline "${project.pipeline}" is not defined` })) ?? run;
    let idle;
    try {
      idle = await this.pool.take();
    } catch (error) {
      this.log.warn({ err: error, run_id: run.id }, 'runner could not start');
      const failed = await this.finish(run, { status: 'failed', started_at: new Date().toISOString(), error_message: `The run could not start: ${(error as Error).message}` });
      return failed ?? run;
    }
    let started: RunRow | null;
    try {
      started = await this.runs.claim(run.id, { started_at: new Date().toISOString(), runner_pid: idle.pid, runner_token: idle.token });
    } catch (error) {
      idle.child.stdin?.end(); // an idle runner given no run exits quietly
      throw error;
    }
    if (!started) {
      idle.child.stdin?.end();
      return (await this.runs.get(run.id)) ?? run; // cancelled or started meanwhile
    }
    this.emit('run', started);
    const runner: WatchedRunner = {
      runId: run.id,
      projectId: project.id,
      pid: idle.pid,
      token: idle.token,
      stateFile: runFiles(this.config.logsDir, project.id, run.id).state,
      child: idle.child,
      exited: idle.exited ?? undefined,
    };
    try {
      assignRun(idle, this.config, project, started, plan);
    } catch (error) {
      this.log.warn({ err: error, run_id: run.id }, 'the run could not be handed to its runner');
      idle.child.stdin?.end();
      runner.startError = (error as Error).message;
      try {
        await this.runnerOnEnded(runner);
        return (await this.runs.get(run.id)) ?? started;
      } catch {
        // the watch records it, trying until the database lets it
      }
    }
    this.watch.add(runner);
    return started;
  }

  private async runnerOnProgress(runner: WatchedRunner, state: RunnerState): Promise<void> {
    const run = await this.runs.get(runner.runId);
    if (!run || run.status !== 'running') return;
    if (run.current_step === state.current_step && run.progress_current === state.progress_current) return;
    this.emit('run', await this.runs.update(run.id, { current_step: state.current_step, progress_current: state.progress_current }));
  }

  /** Records how a runner ended. Idempotent: the watch calls it again until it succeeds. */
  private async runnerOnEnded(runner: WatchedRunner): Promise<void> {
    const run = await this.runs.get(runner.runId);
    if (!run || isTerminal(run.status)) return;
    const read = readStateFile(runner.stateFile, runner.runId);
    const { changes, marker } = runnerOutcome(runner, read, run);
    if (marker !== null) {
      // Whatever the runner left behind (a step in its own group) must not outlive the run.
      if (runner.token) killProcessesWithEnv(TOKEN_VARIABLE, runner.token);
      if (!runner.markerWritten) this.appendMarker(run, marker);
      runner.markerWritten = true;
    }
    await this.finish(run, changes);
  }

  /**
   * Records a terminal state with the final log size, then starts the project's next queued run.
   * Null when the run had already ended (nothing changes then).
   */
  private async finish(run: RunRow, changes: RunChanges): Promise<RunRow | null> {
    let logSize = 0;
    try {
      logSize = fs.statSync(runFiles(this.config.logsDir, run.project_id, run.id).log).size;
    } catch {
      // never written
    }
    const finished = await this.runs.settle(run.id, { finished_at: new Date().toISOString(), ...changes, log_size: logSize, runner_pid: null });
    clearTimeout(this.cancelTimers.get(run.id));
    this.cancelTimers.delete(run.id);
    if (finished) this.emit('run', finished);
    this.scheduleStartNext(run.project_id, 0);
    return finished;
  }

  /** Starts the project's next queued run; retried with backoff while the database refuses. */
  private scheduleStartNext(projectId: number, delayMs: number): void {
    if (this.closed || this.startRetries.has(projectId)) return;
    const timer = setTimeout(() => {
      this.startRetries.delete(projectId);
      this.startNext(projectId).catch((error: unknown) => {
        this.log.error({ err: error, project_id: projectId }, 'starting the next queued run failed; trying again');
        this.scheduleStartNext(projectId, Math.min(START_RETRY_MAX_MS, Math.max(START_RETRY_FIRST_MS, delayMs * 2)));
      });
    }, delayMs);
    timer.unref();
    this.startRetries.set(projectId, timer);
  }

  private async startNext(projectId: number): Promise<void> {
    await this.projectLock.run(projectId, async () => {
      const active = await this.runs.listActiveForProject(projectId);
      if (active.length === 0 || active.some((run) => run.status === 'running')) return;
      const project = await this.projects.get(projectId);
      if (project) await this.launch(project, active[0]);
    });
  }

  /** Signals a runner only while it is still ours (a re-attached runner's pid may be reused). */
  private signalRunner(runner: WatchedRunner, signal: NodeJS.Signals): void {
    if (!runner.child && !isRunnerAlive(runner.pid, runner.token)) return;
    try {
      process.kill(runner.pid, signal);
    } catch {
      // already exiting: its exit settles the run
    }
  }

  private appendMarker(run: RunRow, text: string): void {
    const file = runFiles(this.config.logsDir, run.project_id, run.id).log;
    try {
      const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
      let prefix = '';
      if (size > 0) {
        const fd = fs.openSync(file, 'r');
        const last = Buffer.alloc(1);
        fs.readSync(fd, last, 0, 1, size - 1);
        fs.closeSync(fd);
        if (last[0] !== 0x0a) prefix = '\n';
      }
      fs.appendFileSync(file, `${prefix}${text}\n`);
    } catch (error) {
      this.log.warn({ err: error, run_id: run.id }, 'could not append to the run log');
    }
  }
}
