import fs from 'node:fs';

/** What a worker tells its runners (cluster mode): a file it rewrites each time it renews its leases. */
export interface LeaseWatchSpec {
  file: string;
  /** the run is stopped this long after the last renewal (or the claim) was sent, unless a newer one shows (see server/worker/aliveFile.ts) */
  stale_ms: number;
  /** monotonicMs() when the claim of the run was sent: the runner counts from there, not from its own start */
  since_mono_ms: number;
}

/**
 * The machine's monotonic clock in ms (CLOCK_MONOTONIC, which every process of the machine shares):
 * the worker stamps its renewals with it and its runners read the stamps, so neither a wall clock nor
 * the moment a runner happens to look plays a part.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** The send time (monotonicMs) of the newest renewal the file tells of; null when it tells none. */
export function renewalSentAt(content: string | null): number | null {
  const stamp = content === null ? NaN : Number(content.split(' ')[1]);
  return Number.isFinite(stamp) ? stamp : null;
}

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return null;
  }
}

/**
 * Watches the worker's renewals from the runner's side. A worker that is gone, paused (SIGSTOP, a
 * VM frozen) or stopped past its lease can stop nothing, and the hubs give its runs to other workers
 * once the lease expires: the runner stops its own steps first. The deadline counts from when the
 * claim or the newest renewal was *sent*, by the machine's monotonic clock: a runner that starts
 * late, or looks late, still stops the steps before the lease (database time) can run out.
 */
export function watchLease(spec: LeaseWatchSpec, onStale: (unrenewedMs: number) => void): () => void {
  let since = spec.since_mono_ms;
  const check = (): boolean => {
    since = Math.max(since, renewalSentAt(readOrNull(spec.file)) ?? since);
    const unrenewed = monotonicMs() - since;
    if (unrenewed < spec.stale_ms) return false;
    onStale(unrenewed);
    return true;
  };
  if (check()) return () => {}; // stale already: no step starts
  const timer = setInterval(() => {
    if (check()) clearInterval(timer);
  }, Math.max(20, Math.min(250, Math.floor(spec.stale_ms / 10))));
  return () => clearInterval(timer);
}
