import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type pino from 'pino';
import type { Config } from '../config.js';
import { conflict, badRequest, HubError, notFound } from '../errors.js';
import { runFiles } from '../paths.js';
import type { Pipelines } from '../pipelines/load.js';
import type { RemovalReason } from '../wire.js';
import type { Project, ProjectStore } from '../store/projects.js';
import { isTerminal, type RunRow, type RunStore } from '../store/runs.js';
import { RunnerStartError, type Launcher, type LauncherEvents } from './launcher.js';
import { KeyedLock } from './keyedLock.js';
import { moveAsideOrphanedLogs } from './orphanedLogs.js';
import { FROM_STEP_PREFIX, parsePlan, planRun } from './plan.js';
import { RunSettler, type LogSizeOf } from './settle.js';

export interface RunServiceEvents {
  /** A run was created or its status, step or progress changed. */
  run: [RunRow];
  /** A finished run was purged (by a user, or by the retention limits): its record and files are gone. */
  purged: [RunRow, RemovalReason];
}

export interface StartRequest {
  /** a scope of the pipeline; ignored when `fromStep` is given */
  scope: string;
  /** start at this step and go to the end */
  fromStep?: string;
  triggeredBy: string;
  ifBusy: 'reject' | 'queue';
}

/** Starting a project's next queued run failed (database busy): tried again after this, doubling. */
const START_RETRY_FIRST_MS = 500;
const START_RETRY_MAX_MS = 10_000;

/** Start, cancel, queue, re-attach and purge runs; the only writer of run records. */
export class RunService extends EventEmitter<RunServiceEvents> {
  private readonly projectLock = new KeyedLock<number>();
  private readonly startRetries = new Map<number, NodeJS.Timeout>();
  private readonly settler: RunSettler;
  private readonly launcher: Launcher;
  private closed = false;

  /**
   * `createLauncher` is given the events a launcher reports (progress, ends) and returns it;
   * `logSizeOf` says how long a run's log is when it ends (default: its file on this machine).
   */
  constructor(
    private readonly config: Config,
    private readonly pipelines: Pipelines,
    private readonly projects: ProjectStore,
    private readonly runs: RunStore,
    private readonly log: pino.Logger,
    createLauncher: (events: LauncherEvents) => Launcher,
    logSizeOf?: LogSizeOf,
  ) {
    super();
    this.settler = new RunSettler(config, runs, {
      changed: (run) => this.emit('run', run),
      ended: (projectId) => this.scheduleStartNext(projectId, 0),
    }, log, logSizeOf);
    this.launcher = createLauncher({
      onProgress: (runner, state) => this.settler.runnerOnProgress(runner, state),
      onEnded: (runner) => this.settler.runnerOnEnded(runner),
    });
  }

  async start(project: Project, request: StartRequest): Promise<RunRow> {
    const pipeline = this.pipelines.get(project.pipeline);
    if (!pipeline) throw new HubError(409, 'pipeline_missing', `Project ${project.id} uses pipeline "${project.pipeline}", which the pipelines file no longer defines`);
    if (request.fromStep !== undefined) {
      const steps = pipeline.steps.map((step) => step.name);
      if (!steps.includes(request.fromStep)) {
        throw badRequest('invalid_step', `Unknown step ${JSON.stringify(request.fromStep)} in pipeline "${pipeline.name}"; its steps: ${steps.join(', ')}`, { field: 'from_step', valid_steps: steps });
      }
    } else if (!Object.hasOwn(pipeline.scopes, request.scope)) {
      const valid = Object.keys(pipeline.scopes);
      throw badRequest('invalid_scope', `Unknown scope ${JSON.stringify(request.scope)} for pipeline "${pipeline.name}"; valid scopes: ${valid.join(', ')}`, { field: 'scope', valid_scopes: valid });
    }
    const scope = request.fromStep === undefined ? request.scope : `${FROM_STEP_PREFIX}${request.fromStep}`;
    return this.projectLock.run(project.id, async () => {
      // Deleted while this request waited for the lock.
      if (!(await this.projects.get(project.id))) throw notFound('Project', project.id);
      const busy = async () => {
        const active = await this.runs.listActiveForProject(project.id);
        const current = active.find((run) => run.status === 'running') ?? active[0];
        return conflict('run_active', `Project ${project.id} already has an active run (${current?.id ?? 'just started'}); send "if_busy": "queue" to queue this one`, { active_run_id: current?.id ?? null });
      };
      const queued = (await this.runs.listActiveForProject(project.id)).length > 0;
      if (queued && request.ifBusy !== 'queue') throw await busy();
      const plan = planRun(pipeline, scope);
      const record = {
        project_id: project.id,
        scope,
        status: 'pending' as const,
        triggered_by: request.triggeredBy,
        progress_total: plan.length,
        plan: JSON.stringify(plan),
      };
      // "reject" is decided by the database too: another hub may have started this project meanwhile.
      const run = request.ifBusy === 'queue' ? await this.runs.insert(record) : await this.runs.insertIfIdle(record);
      if (!run) throw await busy();
      this.emit('run', run);
      if (queued) return run;
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
        return (await this.settler.finish(current, { status: 'cancelled', error_message: 'Cancelled before it started' })) ?? (await this.runs.get(run.id))!;
      }
      this.launcher.cancel(run.id);
      return current;
    });
  }

  /** Deletes a finished run's record, log, state and times files. */
  async purge(run: RunRow, reason: RemovalReason = 'purged'): Promise<void> {
    await this.projectLock.run(run.project_id, async () => {
      const current = await this.runs.get(run.id);
      if (!current) throw notFound('Run', run.id);
      if (!isTerminal(current.status)) throw conflict('run_active', `Run ${run.id} is ${current.status}; cancel it before purging`, { status: current.status });
      await this.runs.delete(run.id);
      const files = runFiles(this.config.logsDir, run.project_id, run.id);
      for (const file of [files.log, files.state, files.times, files.sections, files.sectionNames]) fs.rmSync(file, { force: true });
      this.emit('purged', current, reason);
    });
  }

  /** Runs the store deleted already (retention, in batches): their files go and the removal is announced. */
  removed(runs: readonly RunRow[], reason: RemovalReason): void {
    for (const run of runs) {
      const files = runFiles(this.config.logsDir, run.project_id, run.id);
      for (const file of [files.log, files.state, files.times]) {
        try {
          fs.rmSync(file, { force: true });
        } catch (error) {
          // Its record is gone already: the others of the batch, and this one's announcement, go on.
          this.log.warn({ err: error, run_id: run.id, file }, 'a removed run\'s file could not be deleted');
        }
      }
      this.emit('purged', run, reason);
    }
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
   * After a restart: follow every running run's runner again (the launcher re-attaches to live ones
   * and reports the ones that ended meanwhile); then queued runs start.
   */
  async recover(): Promise<void> {
    await moveAsideOrphanedLogs(this.config.logsDir, (projectId, runIds) => this.runs.ownedOf(projectId, runIds), this.log);
    for (const run of await this.runs.listActive()) if (run.status === 'running') this.launcher.reattach(run);
    const projectIds = new Set((await this.runs.listActive()).map((run) => run.project_id));
    for (const projectId of projectIds) this.scheduleStartNext(projectId, 0);
  }

  /** Stops following runners; they keep running and are re-attached on the next start. */
  close(): Promise<void> {
    this.closed = true;
    for (const timer of this.startRetries.values()) clearTimeout(timer);
    this.startRetries.clear();
    return this.launcher.close();
  }

  /** Starts a pending run (under its project's lock): claimed before its runner gets it, so at most once. */
  private async launch(project: Project, run: RunRow): Promise<RunRow> {
    const pipeline = this.pipelines.get(project.pipeline);
    const plan = parsePlan(run.plan) ?? (pipeline && planRun(pipeline, run.scope));
    if (!plan) return (await this.settler.finish(run, { status: 'failed', error_message: `Pipeline "${project.pipeline}" is not defined` })) ?? run;
    try {
      await this.launcher.launch({
        run,
        project,
        plan,
        claim: async (runner) => {
          const claimed = await this.runs.claim(run.id, { started_at: new Date().toISOString(), runner_pid: runner.pid, runner_token: runner.token });
          if (claimed) this.emit('run', claimed);
          return claimed;
        },
      });
      return (await this.runs.get(run.id)) ?? run; // claimed, refused, or already failed to start
    } catch (error) {
      if (!(error instanceof RunnerStartError)) throw error;
      this.log.warn({ err: error, run_id: run.id }, 'runner could not start');
      const failed = await this.settler.finish(run, { status: 'failed', started_at: new Date().toISOString(), error_message: `The run could not start: ${error.message}` });
      return failed ?? run;
    }
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
}
