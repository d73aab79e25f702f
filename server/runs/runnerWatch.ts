import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { readStateFile, type RunnerState } from '../../pipeline-runner/state.js';
import { isAlive, processHasEnv } from '../../pipeline-runner/processes.js';

const POLL_MS = 100;

export interface WatchedRunner {
  runId: number;
  projectId: number;
  pid: number;
  token: string;
  stateFile: string;
  child?: ChildProcess;
  /** Set once the runner has exited; its signal when it was killed by one. */
  exited?: { code: number | null; signal: string | null };
  lastSeen?: string;
  cancelRequested?: boolean;
}

export interface RunnerWatchEvents {
  onState(runner: WatchedRunner, state: RunnerState): void;
  onGone(runner: WatchedRunner): void;
}

/** A runner is ours if the pid is alive and still carries the run's token (pids get reused). */
export function isRunnerAlive(pid: number, token: string): boolean {
  return isAlive(pid) && processHasEnv(pid, 'HUB_RUN_TOKEN', token);
}

/**
 * Follows live runners: the state file they replace atomically (polled by mtime), and their exit,
 * from the child's 'exit' event when the server spawned it, or by liveness checks after a restart.
 */
export class RunnerWatch {
  private readonly runners = new Map<number, WatchedRunner>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly events: RunnerWatchEvents) {}

  add(runner: WatchedRunner): void {
    this.runners.set(runner.runId, runner);
    runner.child?.once('exit', (code, signal) => {
      runner.exited = { code, signal };
      this.check(runner);
    });
    if (!this.timer) {
      this.timer = setInterval(() => this.pollAll(), POLL_MS);
      this.timer.unref();
    }
  }

  get(runId: number): WatchedRunner | undefined {
    return this.runners.get(runId);
  }

  remove(runId: number): void {
    this.runners.delete(runId);
    if (this.runners.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  close(): void {
    for (const runner of this.runners.values()) runner.child?.removeAllListeners('exit');
    this.runners.clear();
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private pollAll(): void {
    for (const runner of [...this.runners.values()]) this.check(runner);
  }

  /** Reads a changed state file; when the runner is gone, reports it after one last read. */
  check(runner: WatchedRunner): void {
    if (!this.runners.has(runner.runId)) return;
    this.readIfChanged(runner);
    if (!this.runners.has(runner.runId)) return;
    const gone = runner.exited !== undefined || (!runner.child && !isRunnerAlive(runner.pid, runner.token));
    if (gone) this.events.onGone(runner);
  }

  private readIfChanged(runner: WatchedRunner): void {
    let seen: string;
    try {
      const stat = fs.statSync(runner.stateFile);
      seen = `${stat.ino}:${stat.mtimeMs}`; // every write is a rename: a new inode
    } catch {
      return;
    }
    if (seen === runner.lastSeen) return;
    runner.lastSeen = seen;
    const state = readStateFile(runner.stateFile);
    if (state) this.events.onState(runner, state);
  }
}
