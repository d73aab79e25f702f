import fs from 'node:fs';
import type { Step } from '../server/wire.js';
import type { LeaseWatchSpec } from './leaseWatch.js';
import { isNoSpace } from './noSpace.js';

/** What a runner writes on stdout once it has started and loaded, before it waits for its run. */
export const READY_LINE = 'ready\n';

/** Every process of a run carries this variable with the run's unique token (see processes.ts). */
export const TOKEN_VARIABLE = 'HUB_RUN_TOKEN';

export const RUNNER_STATUSES = ['running', 'completed', 'failed', 'cancelled'] as const;
export type RunnerStatus = (typeof RUNNER_STATUSES)[number];

export const STEP_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const satisfies readonly Step['status'][];

/** One step of a run as the runner records it: the same shape the API shows (a type only, erased at run time). */
export type StepRecord = Step;

/** What the runner tells the server, through `logs/<projectId>/<runId>.json`. */
export interface RunnerState {
  run_id: number;
  pid: number;
  status: RunnerStatus;
  current_step: string | null;
  progress_current: number;
  progress_total: number;
  exit_code: number | null;
  signal: string | null;
  error_message: string | null;
  started_at: string;
  finished_at: string | null;
  updated_at: string;
  /** every step of the run, in order (absent in state files of runners before steps were recorded) */
  steps?: StepRecord[];
}

/** The run the server hands the runner on stdin. */
export interface RunSpec {
  run_id: number;
  log_file: string;
  state_file: string;
  /** where the runner keeps the log's times (see logClock.ts); none are kept without it */
  times_file?: string;
  grace_ms: number;
  max_log_bytes: number;
  /** Variables every step gets (HUB_RUN_ID, HUB_DOC_ROOT, settings...). */
  env: Record<string, string>;
  steps: { name: string; command: string[]; cwd: string; timeout_s: number | null; env: Record<string, string> }[];
  /** The project's secrets by name: every step gets them as variables, and the log gets `[MASKED]` in their place. */
  secrets?: Record<string, string>;
  /** A worker's run (cluster mode): the runner stops its steps when the worker stops renewing its lease (see leaseWatch.ts). */
  lease?: LeaseWatchSpec;
}

/**
 * Replaces the state file atomically (write, then rename), so a reader never sees half of it. On a
 * full disk the new state is written over the old one instead, in the space the old one holds: a
 * reader may see half of it for a moment (it reads again), which beats never learning how the run
 * ended. Throws ENOSPC when even that does not fit.
 */
export function writeStateFile(file: string, state: RunnerState): void {
  const text = JSON.stringify(state);
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temporary, text);
  } catch (error) {
    fs.rmSync(temporary, { force: true }); // empty or torn
    if (!isNoSpace(error) || !fs.existsSync(file)) throw error;
    overwriteFile(file, text);
    return;
  }
  fs.renameSync(temporary, file);
}

function overwriteFile(file: string, text: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const bytes = Buffer.from(text);
    for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset, offset);
    fs.ftruncateSync(fd, bytes.length);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The runner's exit code tells its outcome too, so the server can settle a run whose state file
 * was damaged (a step knows its path; a power cut can leave it empty). 70: the runner crashed.
 * 5: the run failed because the disk is full, and its final state could not be written.
 */
export const RUNNER_EXIT_CODES = { completed: 0, failed: 3, cancelled: 4 } as const satisfies Record<Exclude<RunnerStatus, 'running'>, number>;
export const RUNNER_CRASH_EXIT_CODE = 70;
export const RUNNER_NO_SPACE_EXIT_CODE = 5;

export function statusOfExitCode(code: number | null | undefined): Exclude<RunnerStatus, 'running'> | null {
  for (const [status, value] of Object.entries(RUNNER_EXIT_CODES)) if (value === code) return status as Exclude<RunnerStatus, 'running'>;
  return null;
}

/** What reading a state file found: nothing yet, a state, or a file that is not one (with why). */
export type StateRead = { kind: 'missing' } | { kind: 'state'; state: RunnerState } | { kind: 'unreadable'; reason: string };

const isCount = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isText = (value: unknown) => value === null || typeof value === 'string';

function checkState(value: unknown, runId: number | undefined): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const state = value as Record<string, unknown>;
  if (!RUNNER_STATUSES.includes(state.status as RunnerStatus)) return `unknown status ${JSON.stringify(state.status)}`;
  if (runId !== undefined && state.run_id !== runId) return `it belongs to run ${JSON.stringify(state.run_id)}`;
  if (!isCount(state.progress_current) || !isCount(state.progress_total)) return 'progress is not a count';
  if (!isText(state.current_step) || !isText(state.error_message) || !isText(state.signal) || !isText(state.finished_at)) return 'a text field has the wrong type';
  if (state.exit_code !== null && !Number.isSafeInteger(state.exit_code)) return 'exit_code is not an integer';
  if (state.steps !== undefined && (!Array.isArray(state.steps) || state.steps.some((step) => typeof step !== 'object' || step === null || !STEP_STATUSES.includes((step as StepRecord).status)))) return 'steps is not a list of steps';
  return null;
}

/** Reads a state file without throwing: a damaged file is a fact to handle, not an exception. */
export function readStateFile(file: string, runId?: number): StateRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'unreadable', reason: (error as Error).message };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'unreadable', reason: text.length === 0 ? 'the file is empty' : 'the file is not valid JSON' };
  }
  const fault = checkState(parsed, runId);
  return fault ? { kind: 'unreadable', reason: fault } : { kind: 'state', state: parsed as RunnerState };
}
