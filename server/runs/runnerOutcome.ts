import { noSpaceMessage } from '../../pipeline-runner/noSpace.js';
import { RUNNER_NO_SPACE_EXIT_CODE, statusOfExitCode, type StateRead } from '../../pipeline-runner/state.js';
import type { RunChanges, RunRow } from '../store/runs.js';
import type { WatchedRunner } from './runnerWatch.js';

export interface RunnerOutcome {
  changes: RunChanges;
  /** a line for the log when the runner could not write its own last line */
  marker: string | null;
}

const describeExit = (exited: WatchedRunner['exited']) =>
  exited?.signal ? `was killed by ${exited.signal}` : exited ? `exited with code ${exited.code}` : 'disappeared';

/**
 * What a runner that has ended means for its run: its final state when it wrote one; else its exit
 * code (which tells the outcome too) when the state file was damaged or the disk was full; else
 * failed (or cancelled, when a cancel was asked for), saying what is known.
 */
export function runnerOutcome(runner: WatchedRunner, read: StateRead, run: RunRow): RunnerOutcome {
  if (read.kind === 'state' && read.state.status !== 'running') {
    const { state } = read;
    return {
      marker: null,
      changes: {
        status: state.status,
        current_step: state.current_step,
        progress_current: state.progress_current,
        exit_code: state.exit_code,
        signal: state.signal,
        error_message: state.error_message,
        finished_at: state.finished_at ?? new Date().toISOString(),
        ...(state.steps && { steps: JSON.stringify(state.steps) }),
      },
    };
  }
  const last = read.kind === 'state' ? read.state : null;
  const progress = { current_step: last?.current_step ?? run.current_step, progress_current: last?.progress_current ?? run.progress_current, steps: last?.steps ? JSON.stringify(last.steps) : run.steps };
  if (runner.lost !== undefined) {
    return { marker: null, changes: { status: 'failed', error_message: runner.lost, ...progress } };
  }
  if (runner.startError !== undefined) {
    const message = `The run could not start: ${runner.startError}`;
    return { marker: `[hub] run failed: ${message}`, changes: { status: 'failed', error_message: message, ...progress } };
  }
  if (runner.exited?.code === RUNNER_NO_SPACE_EXIT_CODE && !runner.exited.signal) {
    // The disk was full: the runner failed the run but could not write that down.
    const message = noSpaceMessage(progress.current_step);
    return { marker: `[hub] run failed: ${message}`, changes: { status: 'failed', error_message: message, ...progress } };
  }
  const fault = read.kind === 'unreadable' ? read.reason : null;
  const told = runner.exited && !runner.exited.signal ? statusOfExitCode(runner.exited.code) : null;
  if (fault !== null && told !== null) {
    // The runner finished and wrote its own last line; only the step's exit code is lost.
    const message = told === 'completed' ? null : `Run ${told}; its state file was unreadable (${fault}), so the failing step and its exit code are unknown`;
    return {
      marker: null,
      changes: { status: told, error_message: message, ...progress, ...(told === 'completed' && { progress_current: run.progress_total, exit_code: 0 }) },
    };
  }
  if (runner.cancelRequested) {
    return { marker: '[hub] run cancelled: Run cancelled', changes: { status: 'cancelled', signal: runner.exited?.signal ?? null, error_message: 'Run cancelled', ...progress } };
  }
  const message = fault !== null
    ? `The runner ${describeExit(runner.exited)} and its state file is unreadable (${fault}): the run's outcome is unknown`
    : `The runner ${describeExit(runner.exited)} before writing a final state`;
  return { marker: `[hub] run failed: ${message}`, changes: { status: 'failed', signal: runner.exited?.signal ?? null, error_message: message, ...progress } };
}
