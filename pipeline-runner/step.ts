import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { RunSpec } from './state.js';
import { signalGroup } from './processes.js';
import { setLongTimeout } from './longTimer.js';
import { StepCapture } from './capture.js';
import type { Masker } from './masker.js';
import type { PipeEnds } from './fifoSupply.js';

export type StepOutcome =
  | { kind: 'exit'; code: number | null; signal: string | null }
  | { kind: 'spawn_error'; message: string }
  | { kind: 'timeout'; timeoutS: number }
  | { kind: 'log_limit'; limit: number }
  | { kind: 'log_write'; message: string; error: Error }
  | { kind: 'cancelled' };

export interface StepOptions {
  step: RunSpec['steps'][number];
  fd: number;
  env: Record<string, string>;
  /** the project's secrets, as variables of their own names (the hub's own variables win) */
  secrets?: Record<string, string>;
  graceMs: number;
  maxLogBytes: number;
  cancel: AbortSignal;
  /** the run's masker: the step's output goes through the runner (capture.ts), never straight to the file */
  masker: Masker;
  /** the pipe of its capture, made ahead (fifoSupply.ts); without it, the capture makes one */
  pipe?: PipeEnds;
}

// How often the log size is checked against the limit: the overshoot is what a step writes in this time.
const LOG_LIMIT_CHECK_MS = 25;
/** Once a step's group has gone, how long a process that escaped it may keep the capture pipe open. */
const CAPTURE_DRAIN_MS = 500;

/**
 * Runs one step in its own process group with stdout and stderr on one pipe the runner masks and
 * writes to the log file (capture.ts), and races its exit against timeout, cancel and the log
 * limit. Whatever ends it, the whole group is killed (SIGTERM, then SIGKILL after the grace), its
 * output is all written, and every timer is cleared before returning.
 */
export function runStep({ step, fd, env, secrets, graceMs, maxLogBytes, cancel, masker, pipe }: StepOptions): Promise<StepOutcome> {
  return new Promise((resolve) => {
    let capture: StepCapture;
    try {
      capture = new StepCapture(fd, masker, (error) => stop({ kind: 'log_write', message: error.message, error }, 'SIGKILL'), pipe);
    } catch (error) {
      resolve({ kind: 'spawn_error', message: `its output pipe could not be made: ${(error as Error).message}` });
      return;
    }
    const output = capture.writeFd;
    const child = spawn(step.command[0], step.command.slice(1), {
      cwd: step.cwd,
      env: { ...process.env, ...step.env, ...secrets, ...env, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', output, output],
      detached: true, // its own process group, so a cancel reaches its grandchildren too
    });
    capture.closeWriteEnd();
    let stopReason: StepOutcome | null = null;
    let finished = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: StepOutcome, firstSignal: NodeJS.Signals = 'SIGTERM') => {
      if (stopReason || finished || child.pid === undefined) return;
      stopReason = reason;
      signalGroup(child.pid, firstSignal);
      killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), graceMs);
    };
    const timeoutTimer = step.timeout_s ? setLongTimeout(() => stop({ kind: 'timeout', timeoutS: step.timeout_s! }), step.timeout_s * 1000) : undefined;
    const limitTimer = setInterval(() => {
      if (fs.fstatSync(fd).size > maxLogBytes) stop({ kind: 'log_limit', limit: maxLogBytes }, 'SIGKILL');
    }, LOG_LIMIT_CHECK_MS);
    const onCancel = () => stop({ kind: 'cancelled' });
    cancel.addEventListener('abort', onCancel);
    if (cancel.aborted) onCancel();

    // 'exit' may or may not follow 'error' (Node docs): settle once.
    const finish = (outcome: StepOutcome) => {
      if (finished) return;
      finished = true;
      timeoutTimer?.clear();
      clearTimeout(killTimer);
      clearInterval(limitTimer);
      cancel.removeEventListener('abort', onCancel);
      // Leftovers in the step's group (a background child) end with the step.
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      // Its output is all in the log before the step is said to have ended.
      capture.finish(CAPTURE_DRAIN_MS).then(() => resolve(stopReason ?? outcome), () => resolve(stopReason ?? outcome));
    };
    child.once('error', (error) => finish({ kind: 'spawn_error', message: error.message }));
    child.once('exit', (code, signal) => finish({ kind: 'exit', code, signal }));
  });
}
