import os from 'node:os';
import type { CompleteMessage } from '../server/wire.js';

/** Exit codes for a run's outcome, as a shell expects them. */
export const EXIT_CANCELLED = 130;

/** 0 completed; the failing step's exit code (or 128 + its signal) when failed; 130 cancelled. */
export function exitCodeOf(outcome: Pick<CompleteMessage, 'status' | 'exit_code'> & { signal?: string | null }): number {
  if (outcome.status === 'completed') return 0;
  if (outcome.status === 'cancelled') return EXIT_CANCELLED;
  if (outcome.exit_code !== null && outcome.exit_code > 0) return Math.min(outcome.exit_code, 255);
  const signal = outcome.signal ? os.constants.signals[outcome.signal as NodeJS.Signals] : undefined;
  return signal ? 128 + signal : 1;
}
