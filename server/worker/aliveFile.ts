import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { monotonicMs, type LeaseWatchSpec } from '../../pipeline-runner/leaseWatch.js';
import { LEASE_SAFE_FRACTION } from './leases.js';

/**
 * A runner stops its steps after this share of the lease from the last renewal's sending: a little
 * less than the worker's own LEASE_SAFE_FRACTION, since it looks at the file every tenth of that time.
 */
const RUNNER_STALE_FRACTION = LEASE_SAFE_FRACTION - 0.1;

/** The machine's monotonic clock (what runners read) at a moment of this process's performance.now(). */
export function monotonicAt(performanceNow: number): number {
  return Math.floor(monotonicMs() - (performance.now() - performanceNow));
}

/**
 * The file a worker rewrites each time its leases are renewed, which its runners watch: when it
 * stops changing (the worker gone, paused or stopped), they stop their runs' steps themselves
 * before the leases can expire (pipeline-runner/leaseWatch.ts). One per worker, beside its logs.
 * Each write carries when the renewal was sent, by the machine's monotonic clock.
 */
export class WorkerAliveFile {
  readonly file: string;
  private renewals = 0;
  private newestSent = 0;

  constructor(logsDir: string, workerId: string, private readonly leaseMs: number) {
    this.file = path.join(logsDir, `.worker-${encodeURIComponent(workerId)}.alive`);
    fs.mkdirSync(logsDir, { recursive: true });
  }

  /** Leases were renewed by a statement sent at `sentAt` (performance.now()); renewals answered out of order keep the newest. */
  touch(sentAt: number): void {
    this.newestSent = Math.max(this.newestSent, monotonicAt(sentAt));
    fs.writeFileSync(this.file, `${++this.renewals} ${this.newestSent} ${new Date().toISOString()}\n`);
  }

  /** What the runner of a run claimed at `claimSentAt` (performance.now()) is told to watch. */
  spec(claimSentAt: number): LeaseWatchSpec {
    return { file: this.file, stale_ms: Math.floor(this.leaseMs * RUNNER_STALE_FRACTION), since_mono_ms: monotonicAt(claimSentAt) };
  }
}
