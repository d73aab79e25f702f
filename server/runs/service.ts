import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type pino from 'pino';
import type { Config } from '../config.js';
import { conflict, badRequest, HubError } from '../errors.js';
import { runFiles } from '../paths.js';
import { stepsForScope, type Pipelines } from '../pipelines/load.js';
import type { Project, ProjectStore } from '../store/projects.js';
import { isTerminal, type RunChanges, type RunRow, type RunStore } from '../store/runs.js';
import { killProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { readStateFile, type RunnerState } from '../../pipeline-runner/state.js';
import { isRunnerAlive, RunnerWatch, type WatchedRunner } from './runnerWatch.js';
import { assignRun } from './spawnRunner.js';
import { RunnerPool } from './runnerPool.js';
import { KeyedLock } from './keyedLock.js';

export interface RunServiceEvents {
  /** A run was created or its status, step or progress changed. */
  run: [RunRow];
}

export interface StartRequest {
  scope: string;
  triggeredBy: string;
  ifBusy: 'reject' | 'queue';
}

/** Start, cancel, queue and re-attach runs; the only writer of run records. */
export class RunService extends EventEmitter<RunServiceEvents> {
  private readonly watch: RunnerWatch;
  private readonly projectLock = new KeyedLock<number>();
  private readonly cancelTimers = new Map<number, NodeJS.Timeout>();
  private readonly pool = new RunnerPool();

  constructor(
    private readonly config: Config,
    private readonly pipelines: Pipelines,
    private readonly projects: ProjectStore,
    private readonly runs: RunStore,
    private readonly log: pino.Logger,
  ) {
    super();
    this.watch = new RunnerWatch({
      onState: (runner, state) => this.track(this.runnerOnState(runner, state)),
      onGone: (runner) => this.track(this.runnerOnGone(runner)),
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
      const active = await this.runs.listActiveForProject(project.id);
      if (active.length > 0 && request.ifBusy !== 'queue') {
        const current = active.find((run) => run.status === 'running') ?? active[0];
        throw conflict('run_active', `Project ${project.id} already has an active run (${current.id}); send "if_busy": "queue" to queue this one`, { active_run_id: current.id });
      }
      const run = await this.runs.insert({
        project_id: project.id,
        scope: request.scope,
        status: 'pending',
        triggered_by: request.triggeredBy,
        progress_total: stepsForScope(pipeline, request.scope).length,
      });
      this.emit('run', run);
      if (active.length === 0) return this.launch(project, run);
      return run;
    });
  }

  /** Cancels a pending or running run; a finished run is a conflict. */
  async cancel(run: RunRow): Promise<RunRow> {
    return this.projectLock.run(run.project_id, async () => {
      const current = (await this.runs.get(run.id))!;
      if (isTerminal(current.status)) throw conflict('run_finished', `Run ${run.id} has already ended (${current.status})`, { status: current.status });
      if (current.status === 'pending') {
        return this.finish(current, { status: 'cancelled', error_message: 'Cancelled before it started' });
      }
      const runner = this.watch.get(run.id);
      if (runner && !this.cancelTimers.has(run.id)) {
        runner.cancelRequested = true;
        try {
          process.kill(runner.pid, 'SIGTERM');
        } catch {
          // already exiting: its exit settles the run
        }
        // Backstop: a runner that does not end within the grace is killed with everything it started.
        const timer = setTimeout(() => {
          this.cancelTimers.delete(run.id);
          try {
            process.kill(runner.pid, 'SIGKILL');
          } catch {
            // gone
          }
          runner.exited ??= { code: null, signal: 'SIGKILL' };
          this.watch.check(runner);
        }, this.config.cancelGraceMs + 3000);
        timer.unref();
        this.cancelTimers.set(run.id, timer);
      }
      return current;
    });
  }

  /** After a restart: re-attach live runners, settle the ones that ended, start queued runs. */
  async recover(): Promise<void> {
    this.pool.prime();
    for (const run of await this.runs.listActive()) {
      if (run.status !== 'running') continue;
      const files = runFiles(this.config.logsDir, run.project_id, run.id);
      const runner: WatchedRunner = { runId: run.id, projectId: run.project_id, pid: run.runner_pid ?? 0, token: run.runner_token ?? '', stateFile: files.state };
      const state = readStateFile(files.state);
      if (state && state.status !== 'running') {
        await this.runnerOnState(runner, state);
      } else if (runner.pid > 0 && isRunnerAlive(runner.pid, runner.token)) {
        this.log.info({ run_id: run.id, pid: runner.pid }, 're-attached to a running runner');
        this.watch.add(runner);
      } else {
        await this.runnerOnGone(runner);
      }
    }
    const projectIds = new Set((await this.runs.listActive()).map((run) => run.project_id));
    for (const projectId of projectIds) await this.startNext(projectId);
  }

  /** Stops following runners; they keep running and are re-attached on the next start. */
  close(): void {
    for (const timer of this.cancelTimers.values()) clearTimeout(timer);
    this.cancelTimers.clear();
    this.pool.close();
    this.watch.close();
  }

  private async launch(project: Project, run: RunRow): Promise<RunRow> {
    const pipeline = this.pipelines.get(project.pipeline);
    if (!pipeline) return this.finish(run, { status: 'failed', error_message: `Pipeline "${project.pipeline}" is not defined` });
    let spawned;
    let runner;
    try {
      runner = this.pool.take();
      spawned = assignRun(runner, this.config, pipeline, project, run);
    } catch (error) {
      runner?.child.stdin?.end(); // an idle runner given no run exits quietly
      this.log.warn({ err: error, run_id: run.id }, 'runner could not start');
      return this.finish(run, { status: 'failed', started_at: new Date().toISOString(), error_message: `The run could not start: ${(error as Error).message}` });
    }
    const started = await this.runs.update(run.id, {
      status: 'running',
      started_at: new Date().toISOString(),
      runner_pid: spawned.pid,
      runner_token: spawned.token,
    });
    this.emit('run', started);
    const files = runFiles(this.config.logsDir, project.id, run.id);
    this.watch.add({ runId: run.id, projectId: project.id, pid: spawned.pid, token: spawned.token, stateFile: files.state, child: spawned.child });
    return started;
  }

  private async runnerOnState(runner: WatchedRunner, state: RunnerState): Promise<void> {
    if (state.status === 'running') {
      const run = await this.runs.get(runner.runId);
      if (!run || run.status !== 'running') return;
      if (run.current_step === state.current_step && run.progress_current === state.progress_current) return;
      this.emit('run', await this.runs.update(run.id, { current_step: state.current_step, progress_current: state.progress_current }));
      return;
    }
    this.watch.remove(runner.runId);
    const run = await this.runs.get(runner.runId);
    if (!run || isTerminal(run.status)) return;
    await this.finish(run, {
      status: state.status,
      current_step: state.current_step,
      progress_current: state.progress_current,
      exit_code: state.exit_code,
      signal: state.signal,
      error_message: state.error_message,
      finished_at: state.finished_at ?? new Date().toISOString(),
    });
  }

  private async runnerOnGone(runner: WatchedRunner): Promise<void> {
    this.watch.remove(runner.runId);
    // It may have written its final state just before exiting.
    const state = readStateFile(runner.stateFile);
    if (state && state.status !== 'running') return this.runnerOnState(runner, state);
    const run = await this.runs.get(runner.runId);
    if (!run || isTerminal(run.status)) return;
    // Whatever the runner left behind (a step in its own group) must not outlive the run.
    if (runner.token) killProcessesWithEnv('HUB_RUN_TOKEN', runner.token);
    const how = runner.exited?.signal
      ? `was killed by ${runner.exited.signal}`
      : runner.exited ? `exited with code ${runner.exited.code}` : 'disappeared';
    const cancelled = runner.cancelRequested === true;
    const message = cancelled ? 'Run cancelled' : `The runner ${how} before writing a final state`;
    this.appendMarker(run, `[hub] run ${cancelled ? 'cancelled' : 'failed'}: ${message}`);
    await this.finish(run, {
      status: cancelled ? 'cancelled' : 'failed',
      signal: runner.exited?.signal ?? null,
      error_message: message,
      current_step: state?.current_step ?? run.current_step,
      progress_current: state?.progress_current ?? run.progress_current,
    });
  }

  /** Records a terminal state with the final log size, then starts the project's next queued run. */
  private async finish(run: RunRow, changes: RunChanges): Promise<RunRow> {
    clearTimeout(this.cancelTimers.get(run.id));
    this.cancelTimers.delete(run.id);
    let logSize = 0;
    try {
      logSize = fs.statSync(runFiles(this.config.logsDir, run.project_id, run.id).log).size;
    } catch {
      // never written
    }
    const finished = await this.runs.update(run.id, { finished_at: new Date().toISOString(), ...changes, log_size: logSize, runner_pid: null });
    this.emit('run', finished);
    this.track(this.startNext(run.project_id));
    return finished;
  }

  private async startNext(projectId: number): Promise<void> {
    await this.projectLock.run(projectId, async () => {
      const active = await this.runs.listActiveForProject(projectId);
      if (active.length === 0 || active.some((run) => run.status === 'running')) return;
      const project = await this.projects.get(projectId);
      if (project) await this.launch(project, active[0]);
    });
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

  /** Background work must never become an unhandled rejection. */
  private track(work: Promise<unknown>): void {
    work.catch((error: unknown) => this.log.error({ err: error }, 'run bookkeeping failed'));
  }
}
