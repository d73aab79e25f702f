import fs from 'node:fs';

/**
 * What a run's runner said: its final state; else (state file damaged) the last line it or the
 * hub wrote, `[hub] run <status>`; a run cancelled before it started has no log.
 */
export function outcomeSaid(stateFile: string, logFile: string): string | undefined {
  let state: { status?: string } = {};
  try {
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch {
    // none, or damaged
  }
  const lastMarker = fs.existsSync(logFile) ? /\[hub\] run (completed|failed|cancelled)\b[^\n]*\n?$/.exec(fs.readFileSync(logFile, 'utf8'))?.[1] : 'cancelled';
  return state.status && state.status !== 'running' ? state.status : lastMarker;
}
