import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** What a worker tells its runners (cluster mode): a file it rewrites each time it renews its leases. */
export interface LeaseWatchSpec {
  file: string;
  /** the run is stopped once the file has not changed for this long (less than the lease: see server/worker/aliveFile.ts) */
  stale_ms: number;
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
 * once the lease expires: the runner stops its own steps first. Counted by the runner's monotonic
 * clock from the last change it saw, so the clocks of the worker and the database play no part.
 */
export function watchLease(spec: LeaseWatchSpec, onStale: (unrenewedMs: number) => void): () => void {
  let seen = readOrNull(spec.file);
  let changedAt = performance.now();
  const timer = setInterval(() => {
    const now = readOrNull(spec.file);
    if (now !== seen) {
      seen = now;
      changedAt = performance.now();
      return;
    }
    const unrenewed = performance.now() - changedAt;
    if (unrenewed < spec.stale_ms) return;
    clearInterval(timer);
    onStale(unrenewed);
  }, Math.max(20, Math.min(250, Math.floor(spec.stale_ms / 10))));
  return () => clearInterval(timer);
}
