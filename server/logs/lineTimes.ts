import { parseTimeRecord, TIME_RECORD_BYTES } from '../../pipeline-runner/logClock.js';
import type { LogHandle } from './logSource.js';

/** Records read at a time (15 KiB), and blocks kept. */
const BLOCK_RECORDS = 512;
const KEPT_BLOCKS = 16;

interface TimeRecord {
  size: number;
  time: number | null;
}

/** A damaged record stops every search at it: the lines from there on have no time. */
const DAMAGED: TimeRecord = { size: Number.POSITIVE_INFINITY, time: null };

/** Records read at once from a file, shared by its readers, read again this long after none was there. */
const REOPEN_MS = 250;

/** Consecutive records, enough to stamp a range of lines without reading. */
export class TimeSpan {
  /** `records`: none where no record covers the range (yet), or the log has no times file */
  constructor(private readonly records: readonly TimeRecord[] = []) {}

  /**
   * The time (Unix ms) of each line ending at `ends` (increasing, within the span's range). A line
   * past the last record gets `after`: for a run still writing, the time now (it was written less
   * than an interval ago, or its record is not readable yet); for a finished one, null (older runs
   * have no times file, a runner that crashed wrote no last record). `notBefore`: no time is earlier
   * (a stream stamped a line "now" a moment after the next line's record was taken: it stays in order).
   */
  timesOf(ends: readonly number[], after: number | null, notBefore = 0): (number | null)[] {
    const records = this.records;
    const times: (number | null)[] = [];
    let index = 0;
    for (const end of ends) {
      while (index < records.length && records[index].size < end) index++;
      const time = index < records.length ? records[index].time : after;
      times.push(time !== null && time < notBefore ? notBefore : time);
    }
    return times;
  }
}

/**
 * When a log's lines were written, from the runner's time records beside it (see
 * pipeline-runner/logClock.ts): a line's time is that of the first record whose size covers the
 * line's end. Records are found by binary search over positional reads, a block at a time, the
 * last few blocks kept; a reader at the live edge asks a little past its last answer, which is
 * checked first, so it reads about one small block per batch. Memory stays bounded however long
 * the run.
 */
export class LineTimes {
  private handle: LogHandle | null = null;
  /** an open in progress: callers at once (a live read and a catch-up) share it, so no handle leaks */
  private opening: Promise<LogHandle | null> | null = null;
  /** no file the last time: not asked again before this (a run's lines are not each an open) */
  private reopenAt = 0;
  private closed = false;
  private count = 0;
  private readonly blocks = new Map<number, TimeRecord[]>();
  /** the last answer: readers mostly ask a little further on */
  private hint = 0;

  constructor(private readonly openTimes: () => Promise<LogHandle | null>) {}

  /**
   * The records that stamp the lines ending in (from, to]: read before the lines are split, so the
   * lines can be stamped at once (a live batch is sent the moment it is split). Times are a help:
   * a times file that cannot be read, or not within `maxWaitMs` (a slow archive), holds up no line;
   * those lines get the `after` of TimeSpan.timesOf.
   */
  async span(from: number, to: number, maxWaitMs = Number.POSITIVE_INFINITY): Promise<TimeSpan> {
    const reading = this.readSpan(from, to).catch(() => new TimeSpan());
    if (!Number.isFinite(maxWaitMs)) return reading;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<TimeSpan>((resolve) => (timer = setTimeout(() => resolve(new TimeSpan()), maxWaitMs)));
    try {
      return await Promise.race([reading, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async readSpan(from: number, to: number): Promise<TimeSpan> {
    if (!(await this.refresh())) return new TimeSpan();
    const first = await this.firstCovering(from + 1);
    const last = Math.min(this.count - 1, await this.firstCovering(to));
    const records: TimeRecord[] = [];
    for (let index = first; index <= last; index++) records.push(this.cached(index) ?? (await this.record(index)));
    this.hint = Math.max(0, Math.min(last, this.count - 1));
    return new TimeSpan(records);
  }

  /** The time of each line ending at `ends` (increasing); see TimeSpan.timesOf for `after`. */
  async timesOf(ends: readonly number[], after: number | null): Promise<(number | null)[]> {
    if (ends.length === 0) return [];
    return (await this.span(ends[0] - 1, ends[ends.length - 1])).timesOf(ends, after);
  }

  async close(): Promise<void> {
    this.closed = true;
    const handle = this.handle;
    this.handle = null;
    this.blocks.clear();
    await handle?.close().catch(() => {});
  }

  /** Opens the file if it exists by now and learns how many records it holds; false without one. */
  private async refresh(): Promise<boolean> {
    if (this.closed) return false;
    if (!this.handle) {
      if (Date.now() < this.reopenAt) return false;
      this.opening ??= this.openTimes().catch(() => null).finally(() => (this.opening = null));
      const handle = await this.opening;
      if (!handle) this.reopenAt = Date.now() + REOPEN_MS;
      if (this.closed) {
        await handle?.close().catch(() => {});
        return false;
      }
      this.handle ??= handle;
      if (this.handle !== handle) await handle?.close().catch(() => {});
    }
    if (!this.handle) return false;
    // Never fewer: lookups at once may see their sizes out of order. (A replaced log ends its
    // readers, this one with them: a file is never replaced under a reader.)
    this.count = Math.max(this.count, Math.floor((await this.handle.stat()).size / TIME_RECORD_BYTES));
    return true;
  }

  /** The index of the first record whose size is at least `end` (count if none is). */
  private async firstCovering(end: number): Promise<number> {
    let low = 0;
    let high = this.count;
    if (this.hint < this.count && (await this.record(this.hint)).size < end) low = this.hint + 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((await this.record(middle)).size < end) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** A record already read (the common case inside a batch), without waiting. */
  private cached(index: number): TimeRecord | undefined {
    return this.blocks.get(Math.floor(index / BLOCK_RECORDS))?.[index % BLOCK_RECORDS];
  }

  private async record(index: number): Promise<TimeRecord> {
    const found = this.cached(index);
    if (found) return found;
    const block = Math.floor(index / BLOCK_RECORDS);
    // The last block grows with the file: only its new records are read.
    const known = this.blocks.get(block) ?? [];
    const records = [...known, ...(await this.readRecords(block * BLOCK_RECORDS + known.length, Math.min(BLOCK_RECORDS, this.count - block * BLOCK_RECORDS) - known.length))];
    this.blocks.delete(block); // re-inserted last: the map's order is the blocks' age
    this.blocks.set(block, records);
    while (this.blocks.size > KEPT_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    return records[index % BLOCK_RECORDS] ?? DAMAGED;
  }

  /** `wanted` records from record `first` on. */
  private async readRecords(first: number, wanted: number): Promise<TimeRecord[]> {
    if (wanted <= 0) return [];
    const bytes = Buffer.alloc(wanted * TIME_RECORD_BYTES);
    const { bytesRead } = await this.handle!.read(bytes, 0, bytes.length, first * TIME_RECORD_BYTES);
    const records: TimeRecord[] = [];
    for (let at = 0; at + TIME_RECORD_BYTES <= bytesRead; at += TIME_RECORD_BYTES) {
      const record = parseTimeRecord(bytes, at);
      if (!record) break; // not kept: a torn read is read again next time (a damaged record stays DAMAGED)
      records.push(record);
    }
    return records;
  }
}
