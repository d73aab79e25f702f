import fs from 'node:fs';
import { readStateFile, TOKEN_VARIABLE, type RunnerState } from '../../pipeline-runner/state.js';
import { isAlive, processHasEnv } from '../../pipeline-runner/processes.js';
import type { RunnerProcess } from './runnerProcess.js';
import type { RunFence } from '../store/runs.js';

const POLL_MS = 100;
/** A settle that failed (database busy) is tried again after this, doubling up to the cap. */
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5000;
/**
 * After a cancel, the runner itself has the grace to stop its step (SIGTERM, then SIGKILL to the
 * step's group); if it has not ended this much later, it is killed outright with all it started.
 */
export const FORCE_KILL_MARGIN_MS = 3000;

export interface WatchedRunner {
  runId: number;
  projectId: number;
  pid: number;
  token: string;
  stateFile: string;
  /** the process, when this server started it (else it is followed by pid + token) */
  process?: RunnerProcess;
  /** Set once the runner has exited; its signal when it was killed by one. */
  exited?: { code: number | null; signal: string | null };
  /** why the run could not be handed to the runner, if it could not */
  startError?: string;
  /** its machine is gone (cluster mode): why, as the run's error */
  lost?: string;
  /** the lease its writes carry (cluster mode: a worker's, or a hub's giving up of an expired one) */
  fence?: RunFence;
  /** a write under `fence` was refused: the run is no longer this worker's, and nothing more is recorded */
  leaseLost?: boolean;
  cancelRequested?: boolean;
  forceKill?: NodeJS.Timeout;
  /** the hub's own end-of-run line is in the log (written once, however often settling is tried) */
  markerWritten?: boolean;
  lastSeen?: string;
  lastFault?: string;
  settling?: boolean;
  failures?: number;
  retryAt?: number;
}

export interface RunnerWatchEvents {
  /** The runner reported progress. A rejection makes the watch read the same state again. */
  onProgress(runner: WatchedRunner, state: RunnerState): Promise<void>;
  /** The state file is not a state (damaged by a step or a power cut): noted once per fault. */
  onStateFault(runner: WatchedRunner, reason: string): void;
  /**
   * The runner has ended (final state, or gone): record the outcome. Must be idempotent; a
   * rejection is retried with backoff, and the runner stays watched until it succeeds.
   */
  onEnded(runner: WatchedRunner): Promise<void>;
  onSettleError(runner: WatchedRunner, error: unknown): void;
}

/** A runner is ours if the pid is alive and still carries the run's token (pids get reused). */
export function isRunnerAlive(pid: number, token: string): boolean {
  return pid > 0 && isAlive(pid) && processHasEnv(pid, TOKEN_VARIABLE, token);
}

/** Signals a runner only while it is still ours (a re-attached runner's pid may have been reused). */
function signalRunner(runner: WatchedRunner, signal: NodeJS.Signals): void {
  if (!runner.process?.followed && !isRunnerAlive(runner.pid, runner.token)) return;
  try {
    process.kill(runner.pid, signal);
  } catch {
    // already exiting: its exit settles the run
  }
}

/**
 * Follows live runners: the state file they replace atomically (polled by mtime), and their exit,
 * from the child process when the server spawned it, or by liveness checks after a restart. A
 * runner leaves the watch only once its run's outcome is recorded.
 */
export class RunnerWatch {
  private readonly runners = new Map<number, WatchedRunner>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly events: RunnerWatchEvents) {}

  add(runner: WatchedRunner): void {
    this.runners.set(runner.runId, runner);
    runner.process?.onExit(() => this.check(runner));
    if (!this.timer) {
      this.timer = setInterval(() => this.pollAll(), POLL_MS);
      this.timer.unref();
    }
  }

  get(runId: number): WatchedRunner | undefined {
    return this.runners.get(runId);
  }

  /** SIGTERM to the runner; SIGKILL when it has not ended by the grace plus FORCE_KILL_MARGIN_MS. */
  cancel(runner: WatchedRunner, graceMs: number): void {
    if (runner.cancelRequested || this.exitOf(runner)) return;
    runner.cancelRequested = true;
    signalRunner(runner, 'SIGTERM');
    runner.forceKill = setTimeout(() => {
      signalRunner(runner, 'SIGKILL');
      runner.exited ??= { code: null, signal: 'SIGKILL' };
      this.check(runner);
    }, graceMs + FORCE_KILL_MARGIN_MS);
    runner.forceKill.unref();
  }

  close(): void {
    for (const runner of this.runners.values()) {
      clearTimeout(runner.forceKill);
    }
    this.runners.clear();
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** How the runner exited, once it has (known when this server started it). */
  exitOf(runner: WatchedRunner): WatchedRunner['exited'] {
    if (!runner.exited && runner.process?.exited) runner.exited = { ...runner.process.exited };
    return runner.exited;
  }

  /** Reads a changed state file; once the runner has ended, settles its run (retried until written). */
  check(runner: WatchedRunner): void {
    if (this.runners.get(runner.runId) !== runner || runner.settling || Date.now() < (runner.retryAt ?? 0)) return;
    const final = this.readIfChanged(runner);
    const gone = final || this.exitOf(runner) !== undefined || runner.startError !== undefined || (!runner.process?.followed && !isRunnerAlive(runner.pid, runner.token));
    if (gone) this.settle(runner);
  }

  private pollAll(): void {
    for (const runner of [...this.runners.values()]) this.check(runner);
  }

  private settle(runner: WatchedRunner): void {
    runner.settling = true;
    this.events.onEnded(runner).then(
      () => this.remove(runner),
      (error: unknown) => {
        runner.failures = (runner.failures ?? 0) + 1;
        runner.retryAt = Date.now() + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (runner.failures - 1));
        runner.settling = false;
        this.events.onSettleError(runner, error);
      },
    );
  }

  private remove(runner: WatchedRunner): void {
    if (this.runners.get(runner.runId) !== runner) return;
    clearTimeout(runner.forceKill);
    this.runners.delete(runner.runId);
    if (this.runners.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** True when the file now holds a final state; progress is reported on the way. */
  private readIfChanged(runner: WatchedRunner): boolean {
    let seen: string;
    try {
      const stat = fs.statSync(runner.stateFile);
      seen = `${stat.ino}:${stat.mtimeMs}:${stat.size}`; // every write is a rename: a new inode
    } catch {
      return false;
    }
    if (seen === runner.lastSeen) return false;
    runner.lastSeen = seen;
    const read = readStateFile(runner.stateFile, runner.runId);
    if (read.kind === 'unreadable') {
      if (runner.lastFault !== read.reason) this.events.onStateFault(runner, read.reason);
      runner.lastFault = read.reason;
      return false;
    }
    if (read.kind !== 'state') return false;
    runner.lastFault = undefined;
    if (read.state.status !== 'running') return true;
    this.events.onProgress(runner, read.state).catch(() => {
      if (runner.lastSeen === seen) runner.lastSeen = undefined; // read it again at the next poll
    });
    return false;
  }
}
