import fs from 'node:fs';

export const RUNNER_STATUSES = ['running', 'completed', 'failed', 'cancelled'] as const;
export type RunnerStatus = (typeof RUNNER_STATUSES)[number];

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
}

/** The run the server hands the runner on stdin. */
export interface RunSpec {
  run_id: number;
  log_file: string;
  state_file: string;
  grace_ms: number;
  max_log_bytes: number;
  /** Variables every step gets (HUB_RUN_ID, HUB_DOC_ROOT, settings...). */
  env: Record<string, string>;
  steps: { name: string; command: string[]; cwd: string; timeout_s: number | null; env: Record<string, string> }[];
}

/** Replaces the state file atomically (write, then rename), so a reader never sees half of it. */
export function writeStateFile(file: string, state: RunnerState): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(state));
  fs.renameSync(temporary, file);
}

/** Reads a state file; null when it does not exist (yet). */
export function readStateFile(file: string): RunnerState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return JSON.parse(text) as RunnerState;
}
