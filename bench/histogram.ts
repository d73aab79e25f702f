import type { Summary } from './stats.js';

const BUCKET_MS = 0.05;
const BUCKETS = 600_000; // 0.05 ms resolution up to 30 s; beyond that only the maximum is kept

/**
 * Latencies of every line of a scenario in fixed buckets: tens of millions of lines fit in a few
 * megabytes, and adding one is an increment.
 */
export class Histogram {
  private readonly buckets = new Uint32Array(BUCKETS + 1);
  count = 0;
  max = 0;

  add(ms: number, times = 1): void {
    const bucket = ms <= 0 ? 0 : Math.min(BUCKETS, Math.floor(ms / BUCKET_MS));
    this.buckets[bucket] += times;
    this.count += times;
    if (ms > this.max) this.max = ms;
  }

  /** The upper edge of the bucket holding the p-th percentile (the maximum beyond the last). */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.min(this.count, Math.floor((p / 100) * this.count) + 1);
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.buckets[bucket];
      if (seen >= rank) return Math.min(this.max, (bucket + 1) * BUCKET_MS);
    }
    return this.max;
  }

  summary(): Summary {
    return { p50: this.percentile(50), p99: this.percentile(99), max: this.count ? this.max : NaN };
  }
}
