import fs from 'node:fs';
import path from 'node:path';
import type { LeaseWatchSpec } from '../../pipeline-runner/leaseWatch.js';
import { LEASE_SAFE_FRACTION } from './leases.js';

/**
 * A runner stops its steps after this share of the lease with no renewal seen: a little less than the
 * worker's own LEASE_SAFE_FRACTION, since it sees a renewal only after its answer came and the file
 * was written, and looks at the file every tenth of that time.
 */
const RUNNER_STALE_FRACTION = LEASE_SAFE_FRACTION - 0.1;

/**
 * The file a worker rewrites each time its leases are renewed, which its runners watch: when it
 * stops changing (the worker gone, paused or stopped), they stop their runs' steps themselves
 * before the leases can expire (pipeline-runner/leaseWatch.ts). One per worker, beside its logs.
 */
export class WorkerAliveFile {
  readonly file: string;
  private renewals = 0;

  constructor(logsDir: string, workerId: string, private readonly leaseMs: number) {
    this.file = path.join(logsDir, `.worker-${encodeURIComponent(workerId)}.alive`);
    fs.mkdirSync(logsDir, { recursive: true });
  }

  /** The leases were just renewed (or claimed): a new content, which is what runners look for. */
  touch(): void {
    fs.writeFileSync(this.file, `${++this.renewals} ${new Date().toISOString()}\n`);
  }

  /** What a runner of this worker is told to watch. */
  spec(): LeaseWatchSpec {
    return { file: this.file, stale_ms: Math.floor(this.leaseMs * RUNNER_STALE_FRACTION) };
  }
}
