import fs from 'node:fs';
import { runFiles } from '../paths.js';
import { isTerminal, type RunRow } from '../store/runs.js';
import type { Run } from '../wire.js';

export type RunJson = Run;

/** The public shape of a run. The runner's token and pid, and the commands it runs, stay inside the server. */
export function toRunJson(row: RunRow, logsDir: string): RunJson {
  const { runner_pid: _pid, runner_token: _token, plan: _plan, ...rest } = row;
  const files = runFiles(logsDir, row.project_id, row.id);
  let logSize = row.log_size;
  if (!isTerminal(row.status)) {
    try {
      logSize = fs.statSync(files.log).size;
    } catch {
      logSize = 0;
    }
  }
  return { ...rest, log_size: logSize, log_path: files.relativeLog };
}
