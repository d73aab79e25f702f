import type pino from 'pino';

/** The message of the log line (tests look for it in a hub's output). */
export const UNHANDLED_REJECTION_MESSAGE = 'unhandled promise rejection; exiting';

/**
 * A promise nobody handled is a bug, and what it left half done is unknown: as Node's default, the
 * process ends (exit code 1), but first says why in the structured log, with the stack. Lint
 * (no-floating-promises) keeps these out; this is for the one it could not see.
 */
export function exitOnUnhandledRejection(log: pino.Logger): void {
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, UNHANDLED_REJECTION_MESSAGE);
    process.exit(1);
  });
}
