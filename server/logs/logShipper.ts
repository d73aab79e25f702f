import fs from 'node:fs/promises';
import type { Redis } from './redisClient.js';
import { LeaseLostError } from '../errors.js';
import { backoffMs, pause, withTimeout } from '../retry.js';
import { parseTimeRecord, SAMPLE_MS, TIME_RECORD_BYTES } from '../../pipeline-runner/logClock.js';
import { shipPiece } from './redisLogStream.js';

/** One ship carries at most this much of each file per call (Redis handles it in one go; a retry re-sends no more). */
const CHUNK_BYTES = 256 * 1024;
/**
 * A run's new bytes go to Redis at most once per interval: one call per run per interval whatever
 * its line rate (a watcher hint per write would be one per write). A line waits the interval at most.
 */
export const SHIP_INTERVAL_MS = 100;
/** This much waiting ships at once, interval or not (it fills a call). */
const SHIP_EARLY_BYTES = CHUNK_BYTES;
/** A ship that failed (Redis away) is tried again after this, doubling up to the most, with jitter. */
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5000;

/**
 * A ship whose log bytes are not yet covered by a time record waits this long at most for the
 * runner's next sample (every SAMPLE_MS), so the lines and their times go in one call: times that
 * came an interval after their lines would be too late for a hub, which stamps such lines "now".
 */
const TIMES_WAIT_MS = SAMPLE_MS + 5;
/**
 * With a times file, a ship starts this much before its interval is up: it then waits for the
 * runner's next sample (at most a period), so it fixes what it carries an interval after the last
 * ship did, not an interval and a sample wait after (which made a line wait up to 100 + 25 ms).
 */
const TIMES_LEAD_MS = SAMPLE_MS;
const TIMES_POLL_MS = 5;

const EMPTY = Buffer.alloc(0);

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {}); // a ship nobody waits for (the retry's) must not be an unhandled rejection
  return { promise, resolve, reject };
}

export interface ShipperOptions {
  /** the least time between what two ships carry is fixed (0: a ship per hint) */
  intervalMs?: number;
  /** a ship carries the lines its awaited time sample saw (default), not only those there at its start (the bench's baseline) */
  takeSampledLines?: boolean;
  /** how long a ship waits for a time record covering its bytes (default: a sample period and a little) */
  timesWaitMs?: number;
  /** with a times file, how long before its interval is up a ship starts waiting for its sample (default: a sample period; 0: at the interval, the bench's baseline) */
  timesLeadMs?: number;
}

/**
 * Ships a run's log file and its times file to Redis as they grow (on a worker, next to the runner):
 * what is new in both goes in one script call, at most once per interval. It always reads the file
 * from the stream's own length, so after a lost reply, a Redis restart or its own restart it
 * re-sends exactly what the stream lacks: the file stays the source of truth. Every write carries
 * the worker's lease epoch: once the stream refuses it, the shipper stops for good.
 */
export class LogShipper {
  private shipped = 0;
  /** bytes of the times file copied to Redis */
  private timesShipped = 0;
  private running: Promise<void> | null = null;
  /** the ship that covers every hint since the last ship started: it starts at the next interval */
  private next: Deferred | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** when the last ship fixed what it carries (its start, or the sample it waited for): intervals count from there */
  private lastCut = -Infinity;
  /** the next ship goes at once (a final flush, or a full call waiting) */
  private urgent = false;
  /** a look at how much waits is under way */
  private measuring = false;
  private closed = false;
  /** the stream refused this shipper's epoch */
  private lost: LeaseLostError | null = null;
  /** ships that failed in a row, and the wait before the next try */
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private readonly buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  private readonly timesBuffer = Buffer.allocUnsafe(CHUNK_BYTES);
  private readonly intervalMs: number;
  private readonly takeSampledLines: boolean;
  private readonly timesWaitMs: number;
  private readonly leadMs: number;

  /** `timesFile`: the runner's time records of the log, shipped ahead of the bytes they time; `epoch`: the worker's lease */
  constructor(private readonly redis: Redis, private readonly runId: number, private readonly file: string, private readonly timesFile?: string, private readonly epoch = 0, options: ShipperOptions = {}) {
    this.intervalMs = options.intervalMs ?? SHIP_INTERVAL_MS;
    this.takeSampledLines = options.takeSampledLines ?? true;
    this.timesWaitMs = options.timesWaitMs ?? TIMES_WAIT_MS;
    this.leadMs = timesFile ? Math.min(options.timesLeadMs ?? TIMES_LEAD_MS, this.intervalMs) : 0;
  }

  /** Bytes the stream is known to hold. */
  get size(): number {
    return this.shipped;
  }

  /** Bytes of the times file the Redis copy is known to reach. */
  get timesSize(): number {
    return this.timesShipped;
  }

  /**
   * A hint that the files grew: ship what is new at the next interval (hints until then share that
   * ship, which settles the promise). One that fails (Redis away: each command has a deadline) is
   * tried again with backoff, hint or not. LeaseLostError once refused.
   */
  ship(): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.closed) return Promise.resolve();
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const next = this.pending();
    this.schedule();
    if (this.timer) this.measureBacklog();
    return next;
  }

  /**
   * Ships until the stream holds the whole file as it is now, at once (not at the interval),
   * retrying with backoff while Redis is away, for `deadlineMs` at most: then it throws (the file
   * stays the source of truth; a later flush, or the background retries, send the rest). A refused
   * lease throws at once.
   */
  async flush(deadlineMs: number): Promise<number> {
    const deadline = Date.now() + deadlineMs;
    for (let failures = 0; ; failures++) {
      try {
        await withTimeout(this.shipNow(), Math.max(1, deadline - Date.now()), 'Redis (shipping the end of a log)');
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
    for (const timer of [this.retry, this.timer]) if (timer) clearTimeout(timer);
    this.retry = null;
    this.timer = null;
    // Nothing more ships: whoever waits for the next ship is let go.
    this.next?.resolve();
    this.next = null;
  }

  /** A ship that starts after the one under way (which may have read the files before their end), now. */
  private shipNow(): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.closed) return Promise.resolve();
    const next = this.pending();
    this.urgent = true;
    this.schedule();
    return next;
  }

  private pending(): Promise<void> {
    this.next ??= deferred();
    return this.next.promise;
  }

  /** Starts the pending ship when its interval is up (a ship under way schedules it when it ends). */
  private schedule(): void {
    if (this.running || !this.next || this.closed) return;
    const wait = this.urgent ? 0 : this.lastCut + this.intervalMs - this.leadMs - Date.now();
    if (wait <= 0) {
      this.start(this.next);
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.schedule();
    }, wait);
    this.timer.unref();
  }

  /** While a ship waits for its interval: a full call's worth waiting goes at once. */
  private measureBacklog(): void {
    if (this.measuring) return;
    this.measuring = true;
    fs.stat(this.file).then(({ size }) => {
      if (size - this.shipped < SHIP_EARLY_BYTES || !this.timer) return;
      this.urgent = true;
      this.schedule();
    }, () => {}).finally(() => {
      this.measuring = false;
    });
  }

  private start(ship: Deferred): void {
    const urgent = this.urgent;
    this.next = null;
    this.urgent = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastCut = Date.now();
    this.running = this.shipAll(urgent).then(() => {
      this.failures = 0;
      ship.resolve();
    }, (error: unknown) => {
      if (!this.closed) {
        this.retry = setTimeout(() => {
          this.ship().catch(() => {}); // a failed retry schedules the next
        }, backoffMs(this.failures++, RETRY_FIRST_MS, RETRY_MAX_MS));
        this.retry.unref();
      }
      ship.reject(error);
    }).finally(() => {
      this.running = null;
      this.schedule();
    });
  }

  private refused(error: LeaseLostError): LeaseLostError {
    this.lost ??= error;
    this.close();
    return this.lost;
  }

  /**
   * Ships until the stream and the times copy hold what the files held when it started, a call per
   * up to a chunk of each (what is written meanwhile waits for the next ship: chasing it would be a
   * call per write). Whatever Redis answers is where each copy ends: the next read starts there
   * (from 0 again for a copy Redis lost). A failure ends this ship (see start()); a refused epoch
   * ends the shipper.
   */
  private async shipAll(urgent: boolean): Promise<void> {
    const log = await fs.open(this.file, 'r').catch(() => null); // not written yet
    const times = this.timesFile ? await fs.open(this.timesFile, 'r').catch(() => null) : null;
    try {
      const size = log ? (await log.stat()).size : 0;
      // A final flush waits for nothing (the runner's last sample is written before it ends).
      const covering = times ? await timesCovering(times, size, urgent ? 0 : this.timesWaitMs) : { size: 0, logCovered: 0 };
      this.lastCut = Date.now();
      const timesEnd = covering.size;
      // The lines the awaited sample saw go too: those written while it was awaited (up to a sample
      // period) would wait a whole interval more.
      const end = this.takeSampledLines ? Math.max(size, covering.logCovered) : size;
      while (!this.closed) {
        const timesBytes = times ? await readFrom(times, this.timesBuffer, this.timesShipped, timesEnd) : EMPTY;
        const bytes = log ? await readFrom(log, this.buffer, this.shipped, end) : EMPTY;
        if (bytes.length === 0 && timesBytes.length === 0) return;
        const after = await shipPiece(this.redis, this.runId, { offset: this.shipped, bytes, timesOffset: this.timesShipped, times: timesBytes, epoch: this.epoch });
        this.shipped = after.size;
        this.timesShipped = after.timesSize;
      }
    } catch (error) {
      if (error instanceof LeaseLostError) throw this.refused(error);
      throw error;
    } finally {
      await Promise.all([log?.close(), times?.close()]);
    }
  }
}

/**
 * The times file's length once its last record covers `logEnd`, or after `waitMs`; `logCovered`:
 * the log's size in that record (the log has at least that much; 0 if none covered it).
 */
async function timesCovering(times: fs.FileHandle, logEnd: number, waitMs: number): Promise<{ size: number; logCovered: number }> {
  const deadline = Date.now() + waitMs;
  const last = Buffer.alloc(TIME_RECORD_BYTES);
  for (;;) {
    const { size } = await times.stat();
    if (Date.now() >= deadline || size < TIME_RECORD_BYTES) return { size, logCovered: 0 };
    await times.read(last, 0, TIME_RECORD_BYTES, size - TIME_RECORD_BYTES);
    const record = parseTimeRecord(last, 0);
    // A torn or foreign record: go on without times rather than wait for them.
    if (!record) return { size, logCovered: 0 };
    if (record.size >= logEnd) return { size, logCovered: record.size };
    await pause(TIMES_POLL_MS);
  }
}

/** Up to a buffer of the file from `position`, up to `end` (nothing from there on). */
async function readFrom(handle: fs.FileHandle, buffer: Buffer, position: number, end: number): Promise<Buffer> {
  if (position >= end) return EMPTY;
  const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position);
  return buffer.subarray(0, bytesRead);
}
