import fs from 'node:fs';
import { runFiles } from '../paths.js';
import { isTerminal, type RunRow } from '../store/runs.js';
import type { Run } from '../wire.js';

/**
 * The public shape of a run, field by field: the runner's token and pid, the commands it runs and
 * whatever else a store keeps (a worker's id) stay inside, so every store gives the same JSON.
 */
export function toRunJson(row: RunRow, logsDir: string, liveSize = true): Run {
  const files = runFiles(logsDir, row.project_id, row.id);
  let logSize = row.log_size;
  // An active run's size, from its file when it is on this machine (else as last recorded).
  if (liveSize && !isTerminal(row.status)) {
    try {
      logSize = fs.statSync(files.log).size;
    } catch {
      logSize = 0;
    }
  }
  return {
    id: row.id,
    project_id: row.project_id,
    scope: row.scope,
    status: row.status,
    triggered_by: row.triggered_by,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
    exit_code: row.exit_code,
    signal: row.signal,
    error_message: row.error_message,
    current_step: row.current_step,
    progress_current: row.progress_current,
    progress_total: row.progress_total,
    log_size: logSize,
    log_path: files.relativeLog,
  };
}
