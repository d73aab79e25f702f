import fs from 'node:fs/promises';
import type { Redis } from './redisClient.js';
import { LeaseLostError } from '../errors.js';
import { backoffMs, pause, withTimeout } from '../retry.js';
import { appendChunk, writeTimes } from './redisLogStream.js';

/** One append carries at most this much (Redis handles it in one go; a retry re-sends no more). */
const CHUNK_BYTES = 256 * 1024;
/** A ship that failed (Redis away) is tried again after this, doubling up to the most, with jitter. */
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5000;

/**
 * Ships a run's log file to its Redis stream as it grows (on a worker, next to the runner). It always
 * reads the file from the stream's own length, so after a lost reply, a Redis restart or its own
 * restart it re-sends exactly what the stream lacks: the file stays the source of truth. Every write
 * carries the worker's lease epoch: once the stream refuses it, the shipper stops for good.
 */
export class LogShipper {
  private shipped = 0;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  /** the stream refused this shipper's epoch */
  private lost: LeaseLostError | null = null;
  /** ships that failed in a row, and the wait before the next try */
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private readonly buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  /** bytes of the times file copied to Redis */
  private timesShipped = 0;

  /** `timesFile`: the runner's time records of the log, shipped ahead of the bytes they time; `epoch`: the worker's lease */
  constructor(private readonly redis: Redis, private readonly runId: number, private readonly file: string, private readonly timesFile?: string, private readonly epoch = 0) {}

  /** Bytes the stream is known to hold. */
  get size(): number {
    return this.shipped;
  }

  /**
   * A hint that the file grew: ship what is new (coalesced while a ship is under way). One that
   * fails (Redis away: each command has a deadline) is tried again with backoff, hint or not.
   * LeaseLostError once refused.
   */
  ship(): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.running = this.shipAll().then(() => {
      this.failures = 0;
    }, (error: unknown) => {
      if (!this.closed) {
        this.retry = setTimeout(() => {
          this.ship().catch(() => {}); // a failed retry schedules the next
        }, backoffMs(this.failures++, RETRY_FIRST_MS, RETRY_MAX_MS));
        this.retry.unref();
      }
      throw error;
    }).finally(() => {
      this.running = null;
      if (this.again && !this.closed) {
        this.again = false;
        this.ship().catch(() => {}); // a failure is tried again (above)
      }
    });
    return this.running;
  }

  /**
   * Ships until the stream holds the whole file as it is now, retrying with backoff while Redis is
   * away, for `deadlineMs` at most: then it throws (the file stays the source of truth; a later
   * flush, or the background retries, send the rest). A refused lease throws at once.
   */
  async flush(deadlineMs: number): Promise<number> {
    const deadline = Date.now() + deadlineMs;
    for (let failures = 0; ; failures++) {
      try {
        await withTimeout(this.shipWhole(), Math.max(1, deadline - Date.now()), 'Redis (shipping the end of a log)');
        if (this.lost) throw this.lost;
        return this.shipped;
      } catch (error) {
        const wait = backoffMs(failures, RETRY_FIRST_MS, RETRY_MAX_MS);
        if (error instanceof LeaseLostError || this.closed || Date.now() + wait >= deadline) throw error;
        await pause(wait);
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  /** One ship after any under way, so what the file holds now is covered. */
  private async shipWhole(): Promise<void> {
    await this.running?.catch(() => {});
    await this.ship();
  }

  /**
   * Copies what is new in the times file. Its pieces go to their own offsets, so a retry (or a
   * restart from 0) writes the same bytes again; a copy that Redis lost is sent again from 0; a
   * failure waits for the next hint.
   */
  private async shipTimes(): Promise<void> {
    if (!this.timesFile) return;
    const handle = await fs.open(this.timesFile, 'r').catch(() => null);
    if (!handle) return; // not written yet
    try {
      const { size } = await handle.stat();
      while (this.timesShipped < size && !this.closed) {
        const { bytesRead } = await handle.read(this.buffer, 0, Math.min(CHUNK_BYTES, size - this.timesShipped), this.timesShipped);
        if (bytesRead === 0) return;
        // The copy's length after: from there next (from 0 again if Redis lost the copy).
        this.timesShipped = await writeTimes(this.redis, this.runId, this.timesShipped, this.buffer.subarray(0, bytesRead), this.epoch);
      }
    } catch (error) {
      // Redis away: the next hint (or the final flush) sends it
      if (error instanceof LeaseLostError) this.refused(error);
    } finally {
      await handle.close();
    }
  }

  private refused(error: LeaseLostError): LeaseLostError {
    this.lost ??= error;
    this.close();
    return this.lost;
  }

  private async shipAll(): Promise<void> {
    // The times first: a hub that reads new lines mostly finds their times there already.
    await this.shipTimes();
    if (this.lost) throw this.lost;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch {
      return; // not written yet
    }
    try {
      for (;;) {
        const { size } = await handle.stat();
        if (this.shipped >= size || this.closed) return;
        const { bytesRead } = await handle.read(this.buffer, 0, Math.min(CHUNK_BYTES, size - this.shipped), this.shipped);
        if (bytesRead === 0) return;
        // Whatever the stream answers is where it ends: the next read starts there. A failure ends
        // this ship (see ship()); a refused epoch ends the shipper.
        try {
          this.shipped = await appendChunk(this.redis, this.runId, this.shipped, this.buffer.subarray(0, bytesRead), this.epoch);
        } catch (error) {
          if (error instanceof LeaseLostError) throw this.refused(error);
          throw error;
        }
      }
    } finally {
      await handle.close();
    }
  }
}
