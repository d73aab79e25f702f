import type { WorkNotice } from '../store/postgres/notify.js';

/**
 * How long a worker may wait, at random, before claiming a run it heard of. Every idle worker hears
 * each notice: without the wait, one queued run cost a claim statement per idle worker in the same
 * millisecond (issue 23). Spread over this window, the first to claim announces it (`claimed:<run>`)
 * and the rest mostly hear so before their turn; it adds at most this much to a claim's delay.
 */
export const CLAIM_JITTER_MS = 100;

/**
 * A wait in [0, jitterMs), skewed late (the square root of a uniform draw), so that few workers wait
 * little. The workers that claim are those whose turn comes before the first claimer's `claimed`
 * reaches them (its round trip, L ms). With a uniform wait they number ~N·L/jitterMs (~100 at
 * 2 500 workers and L = 4 ms); skewed, the first claims after ~jitterMs/√N and ~2√N·L/jitterMs
 * + N·(L/jitterMs)² follow it: ~8 (simulated). A lone worker waits 67 ms on average instead of 50.
 */
export const claimWaitMs = (jitterMs: number, random: () => number): number => Math.sqrt(random()) * jitterMs;

export interface ClaimNoticesOptions {
  /** claims (the worker's claim loop) */
  claim: () => void;
  /** whether the worker has a slot free: a full worker takes no part */
  hasFreeSlot: () => boolean;
  jitterMs?: number;
  /** in [0, 1) */
  random?: () => number;
}

/**
 * Damps the claim notices: a `claim` schedules a claim after a random wait, and when it comes the
 * worker claims only if a run announced since its last turn is not yet heard claimed by another (or
 * the notice named no run: a database before migration 011). The worker's poll covers lost notices.
 */
export class ClaimNotices {
  /** runs announced since the last turn and not heard claimed */
  private readonly announced = new Set<number>();
  /** a notice that named no run came since the last turn */
  private unnamed = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly jitterMs: number;
  private readonly random: () => number;

  constructor(private readonly options: ClaimNoticesOptions) {
    this.jitterMs = options.jitterMs ?? CLAIM_JITTER_MS;
    this.random = options.random ?? Math.random;
  }

  /** A claim notice heard (others are not this class's). */
  hear(notice: WorkNotice): void {
    if (notice.kind === 'claimed') {
      this.announced.delete(notice.runId);
      return;
    }
    if (notice.kind !== 'claim' || this.closed || !this.options.hasFreeSlot()) return;
    if (notice.runId === null) this.unnamed = true;
    else this.announced.add(notice.runId);
    this.timer ??= setTimeout(() => this.turn(), claimWaitMs(this.jitterMs, this.random));
  }

  /** The wait is over: claim if a run heard of may still wait. Runs announced later get a turn of their own. */
  private turn(): void {
    this.timer = null;
    const worth = this.unnamed || this.announced.size > 0;
    this.unnamed = false;
    this.announced.clear();
    if (worth) this.options.claim();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.announced.clear();
  }
}
