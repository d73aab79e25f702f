import { setTimeout as sleep } from 'node:timers/promises';
import { HubError } from './errors.js';

/** How long to wait before try `failures + 1`: doubling from `firstMs` up to `maxMs`, the upper half of it at random (so many clients that lost one server do not all come back at once). */
export function backoffMs(failures: number, firstMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, firstMs * 2 ** Math.min(failures, 30));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** A wait that an abort ends early (resolves, never rejects). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => {});
}

/** `what` took longer than its deadline. */
export const timedOut = (what: string, ms: number) => new HubError(503, 'timeout', `${what} did not answer within ${ms} ms`);

/** The promise, or a `timeout` error after `ms` (the work itself is not stopped: give it a deadline of its own where it has one). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(timedOut(what, ms)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
