import fs from 'node:fs';
import { runFiles } from '../paths.js';
import { isTerminal, type RunRow } from '../store/runs.js';
import type { Run, Step } from '../wire.js';
import { parsePlan } from './plan.js';

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
    steps: stepsOf(row, logSize),
  };
}

/**
 * The run's steps as its runner recorded them; before it started, its plan's steps, pending. A run
 * that ended while a step was running (a runner that died, a lost worker) shows that step ended as
 * the run did, at the end of the log.
 */
function stepsOf(row: RunRow, logSize: number): Step[] {
  let steps: Step[] | null = null;
  try {
    steps = row.steps ? (JSON.parse(row.steps) as Step[]) : null;
  } catch {
    steps = null;
  }
  if (!steps) {
    const plan = parsePlan(row.plan);
    return (plan ?? []).map((step) => ({ name: step.name, status: 'pending', started_at: null, finished_at: null, exit_code: null, signal: null, log_start: null, log_end: null }));
  }
  if (!isTerminal(row.status)) return steps;
  const ended = row.status === 'completed' ? 'completed' : row.status === 'cancelled' ? 'cancelled' : 'failed';
  return steps.map((step) => (step.status === 'running' ? { ...step, status: ended, finished_at: step.finished_at ?? row.finished_at, log_end: step.log_end ?? logSize } : step));
}
