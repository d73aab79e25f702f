import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { ClusterQueue, HeldLease } from '../store/postgres/cluster.js';

/**
 * How far into its lease a worker may let a run go unrenewed, by its own monotonic clock, counted
 * from when the claim or the last renewal was sent: the lease (database time) runs at least a third
 * longer, so the run's steps are stopped before any hub may give the run to another worker.
 */
export const LEASE_SAFE_FRACTION = 2 / 3;

/** Renewals under way at once, at most (each counts from its own sending, so their order does not matter). */
const MAX_RENEWALS_IN_FLIGHT = 3;

export interface LeaseEvents {
  /** The lease on a run is lost, or may be about to: stop its steps now and record nothing more about it. */
  lost(runId: number, why: string): void;
  /** A renewal sent at `sentAt` (performance.now()) was answered: the worker is alive and in touch with the database (the leases it did not keep are lost below). */
  renewed?(sentAt: number): void;
}

interface Lease {
  epoch: number;
  /** performance.now() when the claim or last successful renewal was sent */
  since: number;
  /** its runner has ended: its end is being recorded, nothing is left to stop */
  ending: boolean;
}

/**
 * The leases a worker holds (issue 22): renewed together in one statement with the heartbeat, and
 * given up on the worker's own clock when renewing fails for too long; a renewal also tells it which
 * leases the database no longer gives it (another epoch, a hub's verdict, or expired).
 */
export class WorkerLeases {
  private readonly held = new Map<number, Lease>();
  private readonly timers: NodeJS.Timeout[] = [];
  private renewing = 0;

  constructor(private readonly queue: ClusterQueue, private readonly workerId: string, private readonly leaseMs: number, private readonly events: LeaseEvents, private readonly log: pino.Logger) {}

  /** Renewals four times per lease (one may fail, or two be slow, before the worker stops), and a check of every deadline. */
  start(): void {
    const renew = setInterval(() => {
      this.renew().catch((error: unknown) => this.log.warn({ err: error }, 'renewing leases failed; the runs stop if it keeps failing'));
    }, Math.max(100, Math.floor(this.leaseMs / 4)));
    const check = setInterval(() => this.checkDeadlines(), Math.max(20, Math.min(100, Math.floor(this.leaseMs / 20))));
    this.timers.push(renew, check);
  }

  /** Holds a run's lease under `epoch`; `sentAt`: performance.now() when the claim (or its last renewal) was sent. */
  hold(runId: number, epoch: number, sentAt: number): void {
    this.held.set(runId, { epoch, since: sentAt, ending: false });
  }

  holds(runId: number): boolean {
    return this.held.has(runId);
  }

  /** The run's runner has ended: its lease is still renewed while its end is recorded, but a loss stops nothing. */
  ending(runId: number): void {
    const lease = this.held.get(runId);
    if (lease) lease.ending = true;
  }

  /** Whether the run's runner has ended and its end is being recorded. */
  isEnding(runId: number): boolean {
    return this.held.get(runId)?.ending === true;
  }

  release(runId: number): void {
    this.held.delete(runId);
  }

  /** Renews every lease held (one statement with the heartbeat); those not renewed are lost. */
  async renew(): Promise<void> {
    // A few at once, so one slow answer does not hold the next up; none piled up behind a stalled database.
    if (this.renewing >= MAX_RENEWALS_IN_FLIGHT) return;
    this.renewing++;
    const sent = performance.now();
    const asked = [...this.held];
    let renewed: HeldLease[];
    try {
      const minLeftMs = this.leaseMs * (1 - LEASE_SAFE_FRACTION);
      renewed = await this.queue.renewLeases(this.workerId, asked.map(([runId, lease]) => ({ runId, epoch: lease.epoch })), this.leaseMs, minLeftMs);
    } finally {
      this.renewing--;
    }
    const kept = new Set(renewed.map((lease) => `${lease.runId}:${lease.epoch}`));
    this.events.renewed?.(sent);
    for (const [runId, lease] of asked) {
      if (this.held.get(runId) !== lease) continue; // released (or claimed again) meanwhile
      if (kept.has(`${runId}:${lease.epoch}`)) lease.since = Math.max(lease.since, sent);
      else this.lose(runId, `the database no longer gives this worker the run (epoch ${lease.epoch}: taken over, given up by a hub, or expired)`);
    }
  }

  /** Stops the runs whose lease went unrenewed for LEASE_SAFE_FRACTION of the lease time. */
  checkDeadlines(): void {
    const now = performance.now();
    for (const [runId, lease] of [...this.held]) {
      const unrenewed = now - lease.since;
      if (unrenewed >= this.leaseMs * LEASE_SAFE_FRACTION) this.lose(runId, `its lease was not renewed for ${Math.round(unrenewed)} ms (lease ${this.leaseMs} ms): stopped before it can expire`);
    }
  }

  close(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  private lose(runId: number, why: string): void {
    const lease = this.held.get(runId);
    if (!lease) return;
    this.held.delete(runId);
    if (!lease.ending) this.events.lost(runId, why);
  }
}
