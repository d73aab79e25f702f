import fs from 'node:fs';
import type pino from 'pino';
import type { Config } from '../config.js';
import { runFiles } from '../paths.js';
import { LeaseLostError } from '../errors.js';
import { isTerminal, type RunChanges, type RunFence, type RunRow, type RunStore } from '../store/runs.js';
import { killProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { readStateFile, TOKEN_VARIABLE, type RunnerState } from '../../pipeline-runner/state.js';
import { runnerOutcome } from './runnerOutcome.js';
import type { WatchedRunner } from './runnerWatch.js';

export interface SettleEvents {
  /** a run record changed */
  changed(run: RunRow): void;
  /** a run of this project ended: its queue may move on */
  ended(projectId: number): void;
  /** before a run's end is recorded, when its log is final (a worker ships the rest first) */
  beforeFinish?(run: RunRow): Promise<void>;
  /** a write under the runner's lease was refused (cluster worker): the run is no longer its to carry out */
  leaseLost?(runner: WatchedRunner): void;
}

/** Whether the run's record names this lease (after a write under it went through: its own end). */
function namesLease(run: RunRow | undefined, fence: RunFence): boolean {
  const leased = run as (RunRow & { worker_id?: string | null; lease_epoch?: number }) | undefined;
  return leased?.worker_id === fence.workerId && leased.lease_epoch === fence.epoch;
}

/** A run's final log size: what readers can read of it (a file here; in cluster mode, its stream). */
export type LogSizeOf = (run: RunRow) => Promise<number>;

/** The size of the run's log file on this machine (0 if never written). */
export function localLogSize(logsDir: string): LogSizeOf {
  return async (run) => {
    try {
      return (await fs.promises.stat(runFiles(logsDir, run.project_id, run.id).log)).size;
    } catch {
      return 0; // never written
    }
  };
}

/**
 * Records what runners report: progress, and how each run ended (with the final log size). Every
 * write here is idempotent, so a failed one is simply tried again. A worker's runner carries its
 * lease (`fence`): once a write under it is refused, nothing more is recorded about the run.
 */
export class RunSettler {
  private readonly logSizeOf: LogSizeOf;

  /** `logSizeOf`: where the final size comes from (default: the file on this machine) */
  constructor(private readonly config: Config, private readonly runs: RunStore, private readonly events: SettleEvents, private readonly log: pino.Logger, logSizeOf?: LogSizeOf) {
    this.logSizeOf = logSizeOf ?? localLogSize(config.logsDir);
  }

  async runnerOnProgress(runner: WatchedRunner, state: RunnerState): Promise<void> {
    if (runner.leaseLost) return;
    const run = await this.runs.get(runner.runId);
    if (!run || run.status !== 'running') {
      if (this.holds(runner)) this.refused(runner);
      return;
    }
    const steps = state.steps ? JSON.stringify(state.steps) : run.steps;
    if (run.current_step === state.current_step && run.progress_current === state.progress_current && run.steps === steps) return;
    const updated = await this.runs.update(run.id, { current_step: state.current_step, progress_current: state.progress_current, steps }, runner.fence);
    if (updated) this.events.changed(updated);
    else this.refused(runner);
  }

  /** Records how a runner ended: its final state, its exit, or what is known when neither says. */
  async runnerOnEnded(runner: WatchedRunner): Promise<void> {
    if (runner.leaseLost) return;
    const run = await this.runs.get(runner.runId);
    if (!run || isTerminal(run.status)) {
      // A worker's own end (recorded, its answer lost) names its lease; else a hub gave the run up.
      if (this.holds(runner) && !namesLease(run, runner.fence!)) this.refused(runner);
      return;
    }
    const { changes, marker } = runnerOutcome(runner, readStateFile(runner.stateFile, runner.runId), run);
    if (marker !== null) {
      // Whatever the runner left behind (a step in its own group) must not outlive the run.
      if (runner.token) killProcessesWithEnv(TOKEN_VARIABLE, runner.token);
      if (!runner.markerWritten) this.appendMarker(run, marker);
      runner.markerWritten = true;
    }
    let finished: RunRow | null;
    try {
      finished = await this.finish(run, changes, runner.fence);
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      return this.refused(runner); // its log refused the rest: the run is another's now
    }
    if (!finished && this.holds(runner) && !namesLease(await this.runs.get(run.id), runner.fence!)) this.refused(runner);
  }

  /** Whether the runner is a worker's, under a lease it holds (not a hub's giving up of one). */
  private holds(runner: WatchedRunner): boolean {
    return runner.fence !== undefined && !runner.fence.expired;
  }

  private refused(runner: WatchedRunner): void {
    if (runner.leaseLost) return;
    runner.leaseLost = true;
    this.log.warn({ run_id: runner.runId, epoch: runner.fence?.epoch }, 'the lease on the run is lost: nothing more is recorded about it');
    this.events.leaseLost?.(runner);
  }

  /**
   * Records a terminal state with the final log size, then lets the project's queue move on. Null
   * when the run had already ended, or the fence refused the write (nothing changes then).
   */
  async finish(run: RunRow, changes: RunChanges, fence?: RunFence): Promise<RunRow | null> {
    await this.events.beforeFinish?.(run);
    const logSize = await this.logSizeOf(run);
    const finished = await this.runs.settle(run.id, { finished_at: new Date().toISOString(), ...changes, log_size: logSize, runner_pid: null }, fence);
    if (finished) this.events.changed(finished);
    this.events.ended(run.project_id);
    return finished;
  }

  /** The hub's own last line, when the runner could not write one: on a line of its own. */
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
