import { debuglog } from 'node:util';
import { LineSplitter, lineCount, type LineBatch } from '../logs/lineSplitter.js';
import { liveEdge } from '../logs/logFile.js';
import type { LogHandle, LogSource } from '../logs/logSource.js';
import type { LineTimes } from '../logs/lineTimes.js';
import type { CompleteMessage } from './messages.js';
import { logUnavailable, type HubError } from '../errors.js';

const debug = debuglog('hub:live');
const READ_CHUNK = 1024 * 1024;
/**
 * Reads start at once when the reader has been quiet, so a lone line goes out in well under a
 * millisecond; while writes keep coming, reads are at least this far apart, so each frame carries
 * a batch instead of a line (one frame per write would swamp the sockets at 1000s of writes/s).
 */
const MIN_READ_INTERVAL_MS = 2;
/**
 * A log no bigger than this when its reader opens is read live from its start, so subscribers
 * from offset 0 (the usual case for a run just started) share frames instead of each catching up.
 */
const LIVE_FROM_START_BYTES = 4 * 1024 * 1024;
/** The longest the live edge waits for the lines' times (a slow archive): then they go out stamped "now". */
const TIMES_WAIT_MS = 50;
/** A read that failed (Redis or the archive away: their calls have deadlines) is tried again after this, hint or not. */
const READ_RETRY_MS = 1000;

export interface LiveReaderEvents {
  /** Live reading starts at this boundary (earlier bytes are read by catching up). */
  opened(start: number): void;
  /** Is anyone at the live edge? Lines are decoded only then (else the others read the log themselves). */
  wantsLines(): boolean;
  /** Does anyone at the live edge want the lines' times? They are looked up only then. */
  wantsTimes(): boolean;
  /** Lines read at the live edge. */
  lines(batch: LineBatch): void;
  /** Bytes read that nobody took as lines: later batches no longer follow earlier ones. */
  skipped(): void;
  /** The log was truncated or replaced: offsets no longer mean what they meant. The reader starts over. */
  reset(how: 'truncated' | 'replaced'): void;
  /** Every byte up to the run's end has been read (its last line, if unterminated, came as `lines`). */
  final(complete: CompleteMessage): void;
  /**
   * The run has ended, and its log cannot be read to its recorded size (a source whose short logs are
   * unavailable): no `complete`; subscribers are told and subscribe again. The reader is done.
   */
  unavailable(error: HubError): void;
}

/**
 * The live edge of one run's log: reads what is appended, paced, split into lines as bytes; notices
 * a log reset under it; and, once the run has ended, reads up to its final size and says so.
 */
export class LiveReader {
  private handle: LogHandle | null = null;
  private opening: Promise<LogHandle | null> | null = null;
  private splitter: LineSplitter | null = null;
  private readPosition = 0;
  private pumping = false;
  private dirty = false;
  private lastRead = 0;
  private trailing: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private ending: { size: number; complete: Omit<CompleteMessage, 'next'> } | null = null;
  /** once every byte is read: the final offset and the completion message */
  private finalMessage: CompleteMessage | null = null;
  /** a finished log shorter than the run's record: what was recorded (else null) */
  recordedSize: number | null = null;
  private closed = false;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK);
  /**
   * The last time a live line was stamped with. A line read before the runner's next record is
   * stamped "now", which can be a moment after the record that then stamps the next line: times
   * sent at the live edge never go back.
   */
  private lastTime = 0;

  /** `times`: the log's time records */
  constructor(private readonly runId: number, private readonly source: LogSource, private readonly maxLineBytes: number, private readonly events: LiveReaderEvents, private readonly times: LineTimes) {}

  /** The end of the last line read at the live edge (of the whole log, once final). */
  get committed(): number {
    return this.finalMessage?.next ?? this.splitter?.committed ?? 0;
  }

  get final(): CompleteMessage | null {
    return this.finalMessage;
  }

  /** For a finished run: nothing to follow; readers read up to its final size. */
  finishAt(complete: CompleteMessage): void {
    this.finalMessage = complete;
  }

  /** The handle for positional reads (null while the log does not exist). */
  async ensureOpen(): Promise<LogHandle | null> {
    if (this.handle || this.closed) return this.handle;
    // One opening at a time: a second caller waits for the first instead of racing it.
    this.opening ??= this.open().finally(() => (this.opening = null));
    return this.opening;
  }

  private async open(): Promise<LogHandle | null> {
    const handle = await this.source.open();
    if (this.finalMessage && !this.closed) await this.clampFinal(handle);
    if (!handle || this.closed) {
      await handle?.close();
      return null;
    }
    if (!this.finalMessage) {
      const { size } = await handle.stat();
      const start = size <= LIVE_FROM_START_BYTES ? 0 : await liveEdge(handle, size, this.maxLineBytes);
      this.splitter = new LineSplitter(this.maxLineBytes, start);
      this.readPosition = start;
      this.handle = handle;
      this.events.opened(start);
      return handle;
    }
    this.handle = handle;
    return handle;
  }

  /**
   * A finished run's log that is missing or shorter than its recorded size (removed, truncated,
   * restored from an old copy): readers get the bytes there are, then `complete`, at once.
   */
  private async clampFinal(handle: LogHandle | null): Promise<void> {
    const size = handle ? (await handle.stat()).size : 0;
    if (this.finalMessage && size < this.finalMessage.next) {
      debug('run %d: log is %d bytes, recorded %d', this.runId, size, this.finalMessage.next);
      this.recordedSize = this.finalMessage.next;
      this.finalMessage = { ...this.finalMessage, next: size };
    }
  }

  /** The run has ended and its log is `size` bytes: read the rest, then `final`. */
  end(size: number, complete: Omit<CompleteMessage, 'next'>): void {
    if (this.ending || this.finalMessage) return;
    this.ending = { size, complete };
    this.pumpSoon();
  }

  /** A watcher hint: read whatever was appended. Reads at once when idle; coalesces while busy. */
  async pump(): Promise<void> {
    if (this.pumping) {
      this.dirty = true;
      return;
    }
    const wait = this.lastRead + MIN_READ_INTERVAL_MS - performance.now();
    if (wait > 0 && !this.ending) {
      this.trailing ??= setTimeout(() => {
        this.trailing = null;
        this.pumpSoon();
      }, wait);
      return;
    }
    this.pumping = true;
    this.lastRead = performance.now();
    this.dirty = false;
    try {
      await this.readAppended();
      if (this.ending && !this.dirty && !this.finalMessage && !this.closed) await this.finish();
    } catch (error) {
      debug('run %d: read failed: %s', this.runId, (error as Error).message);
      if (!this.closed) {
        this.retry ??= setTimeout(() => {
          this.retry = null;
          this.pumpSoon();
        }, READ_RETRY_MS);
      }
    } finally {
      this.pumping = false;
    }
    // Hints that came during the read: one more read, paced by MIN_READ_INTERVAL_MS.
    if (this.dirty && !this.closed) this.pumpSoon();
  }

  /** `pump` catches its own read errors; this only keeps a fault in that from going unhandled. */
  private pumpSoon(): void {
    this.pump().catch((error: unknown) => debug('run %d: read failed: %s', this.runId, (error as Error).message));
  }

  private async readAppended(): Promise<void> {
    if (this.finalMessage || this.closed) return;
    const handle = await this.ensureOpen();
    if (!handle || !this.splitter) return;
    const size = await this.sizeUnlessReset(handle);
    if (size === null) return;
    // Up to the size just read, not until a read comes back empty: in cluster mode that last, empty
    // read cost Redis a script call and a look at the chunk mark on every hint and poll. Bytes
    // written since come with a hint of their own, which reads again.
    // (At the end, up to the end's size, as before: until a read comes back empty.)
    const limit = this.ending ? this.ending.size : size;
    while (this.readPosition < limit && !this.closed) {
      const { bytesRead } = await handle.read(this.buffer, 0, Math.min(READ_CHUNK, limit - this.readPosition), this.readPosition);
      if (bytesRead === 0) break;
      // The time records for these bytes are read before they are split (nothing moves meanwhile:
      // reads are one at a time), so the batch goes out the moment it is split.
      const span = this.wantsTimes() ? await this.times.span(this.splitter.committed, this.readPosition + bytesRead, TIMES_WAIT_MS) : null;
      if (this.closed) return;
      this.readPosition += bytesRead;
      const live = this.events.wantsLines();
      const batch = this.splitter.push(this.buffer.subarray(0, bytesRead), live ? 'json' : 'none', span !== null);
      if (span && batch.ends) batch.times = this.inOrder(span.timesOf(batch.ends, Date.now(), this.lastTime));
      if (lineCount(batch) > 0) this.events.lines(batch);
      else if (!live) this.events.skipped();
    }
  }

  /** Notes the last time sent, so the next batch's are not earlier. */
  private inOrder(times: (number | null)[]): (number | null)[] {
    for (const time of times) if (time !== null) this.lastTime = time;
    return times;
  }

  private wantsTimes(): boolean {
    return this.events.wantsLines() && this.events.wantsTimes();
  }

  /** The log's size; null when it was truncated or replaced under us: the reader starts over on the log as it now is. */
  private async sizeUnlessReset(handle: LogHandle): Promise<number | null> {
    const { size } = await handle.stat();
    const truncated = size < this.readPosition;
    const replaced = !truncated && (await this.source.isReplaced(handle));
    if (!truncated && !replaced) return size;
    debug('run %d: log %s', this.runId, truncated ? 'truncated' : 'replaced');
    this.handle = null;
    this.splitter = null;
    // Told before anything can read the new log: no subscriber may get its bytes as a continuation.
    this.events.reset(truncated ? 'truncated' : 'replaced');
    await handle.close().catch(() => {});
    return null;
  }

  private async finish(): Promise<void> {
    const read = this.splitter ? this.readPosition : 0;
    if (read < this.ending!.size && this.source.shortIsUnavailable) {
      // Not `complete` at what could be read: its subscribers would take a short log for the whole
      // (a stream Redis lost before the log was archived). They are told, as an HTTP reader is (503).
      debug('run %d: ended at %d bytes, %d readable', this.runId, this.ending!.size, read);
      this.close().catch(() => {}); // it closes its handle only
      this.events.unavailable(logUnavailable(this.runId, this.ending!.size, read));
      return;
    }
    const span = this.splitter && this.wantsTimes() ? await this.times.span(this.splitter.committed, this.ending!.size, TIMES_WAIT_MS) : null;
    if (this.closed) return;
    const last = this.splitter ? this.splitter.flush(false, 'json', span !== null) : null;
    if (span && last?.ends) last.times = this.inOrder(span.timesOf(last.ends, null, this.lastTime));
    if (last && lineCount(last) > 0) this.events.lines(last);
    this.finalMessage = { ...this.ending!.complete, next: this.splitter?.committed ?? 0 };
    this.events.final(this.finalMessage);
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.trailing) clearTimeout(this.trailing);
    if (this.retry) clearTimeout(this.retry);
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => {});
  }
}
