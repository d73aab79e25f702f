import { debuglog } from 'node:util';
import { LineSplitter, lineCount, type LineBatch } from '../logs/lineSplitter.js';
import { linesFrame, type CompleteMessage, type LogSink } from './messages.js';
import { RecentFrames } from './recentFrames.js';
import { SharedReads, type ReadFrame } from './sharedReads.js';
import { liveEdge, readLines } from '../logs/logFile.js';
import type { LogHandle, LogSource } from '../logs/logSource.js';

const debug = debuglog('hub:tail');
const READ_CHUNK = 1024 * 1024;
/** Catch-up reads end on multiples of this (or of the longest line, if longer): see SharedReads. */
const CATCH_UP_GRID = 512 * 1024;
/** Frames read for catching up, kept per run for the subscribers behind it (only while several are). */
const SHARED_READ_BYTES = 8 * 1024 * 1024;
/**
 * Reads start at once when the reader has been quiet, so a lone line goes out in well under a
 * millisecond; while writes keep coming, reads are at least this far apart, so each frame carries
 * a batch instead of a line (one frame per write would swamp the sockets at 1000s of writes/s).
 */
const MIN_READ_INTERVAL_MS = 2;
/** Frames kept for subscribers that paused (see RecentFrames): bounded per run, not per subscriber. */
const RECENT_BYTES = 16 * 1024 * 1024;
const RECENT_MS = 5000;
/**
 * A log no bigger than this when its reader opens is read live from its start, so subscribers
 * from offset 0 (the usual case for a run just started) share frames instead of each catching up.
 */
const LIVE_FROM_START_BYTES = 4 * 1024 * 1024;

export const SUBSCRIBER_MODES = ['catching_up', 'live', 'ahead', 'done'] as const;
export type SubscriberMode = (typeof SUBSCRIBER_MODES)[number];

export interface Subscriber {
  readonly sink: LogSink;
  /** the first byte this subscriber has not been sent */
  next: number;
  mode: SubscriberMode;
  /** a catch-up loop is running for it */
  reading: boolean;
  /** called when the reader ends the subscription itself (`complete`, `log_reset`), not on remove() */
  readonly onEnd?: () => void;
}

export interface TailOptions {
  runId: number;
  source: LogSource;
  maxLineBytes: number;
  /** called when the last subscriber has left (after `complete`) */
  onIdle?: () => void;
}

/**
 * One reader per run, shared by all its subscribers. Subscribers at the live edge get each batch
 * as one shared frame; the others (late, resuming, or paused because their socket is full) catch
 * up by reading the file from their own offset, then join the live edge. So a slow subscriber
 * never slows the others, and nothing is held in memory on its behalf.
 */
export class RunTail {
  readonly subscribers = new Set<Subscriber>();
  private handle: LogHandle | null = null;
  private opening: Promise<LogHandle | null> | null = null;
  private splitter: LineSplitter | null = null;
  private readPosition = 0;
  private pumping = false;
  private dirty = false;
  private lastRead = 0;
  private trailing: NodeJS.Timeout | null = null;
  private ending: { size: number; complete: Omit<CompleteMessage, 'next'> } | null = null;
  /** once every byte is delivered: the final offset and the completion message */
  private final: CompleteMessage | null = null;
  private closed = false;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK);
  private readonly recent = new RecentFrames(RECENT_BYTES, RECENT_MS);
  private readonly shared: SharedReads;

  constructor(private readonly options: TailOptions) {
    // The grid is at least a line's longest piece, so subscribers fall into step after one read.
    this.shared = new SharedReads(Math.max(CATCH_UP_GRID, options.maxLineBytes + 4), SHARED_READ_BYTES);
  }

  get runId(): number {
    return this.options.runId;
  }


  /** The offset every live subscriber is at: the end of the last line delivered. */
  get committed(): number {
    return this.final?.next ?? this.splitter?.committed ?? 0;
  }

  get isFinal(): boolean {
    return this.final !== null;
  }

  /** For a finished run: nothing to follow, subscribers read up to its final size. */
  finishAt(complete: CompleteMessage): void {
    this.final = complete;
  }

  /** The file handle for positional reads (null while the log does not exist). */
  async ensureOpen(): Promise<LogHandle | null> {
    if (this.handle || this.closed) return this.handle;
    // One opening at a time: a second caller waits for the first instead of racing it.
    this.opening ??= this.open().finally(() => (this.opening = null));
    return this.opening;
  }

  private async open(): Promise<LogHandle | null> {
    const handle = await this.options.source.open();
    if (this.final && !this.closed) await this.clampFinal(handle);
    if (!handle || this.closed) {
      await handle?.close();
      return null;
    }
    if (!this.final) {
      // Live reading starts at the start of a small log, else at its last line boundary; earlier
      // bytes are read by catching up.
      const { size } = await handle.stat();
      const start = size <= LIVE_FROM_START_BYTES ? 0 : await liveEdge(handle, size, this.options.maxLineBytes);
      this.splitter = new LineSplitter(this.options.maxLineBytes, start);
      this.readPosition = start;
      // Subscribers that joined before the file existed are not at this edge: they catch up.
      for (const subscriber of this.subscribers) if (subscriber.mode !== 'done' && subscriber.next !== start) this.catchUp(subscriber);
    }
    this.handle = handle;
    return handle;
  }

  /**
   * A finished run's log that is missing or shorter than its recorded size (removed, truncated,
   * restored from an old copy): subscribers get the bytes there are, then `complete`, at once.
   */
  private async clampFinal(handle: LogHandle | null): Promise<void> {
    const size = handle ? (await handle.stat()).size : 0;
    if (this.final && size < this.final.next) {
      debug('run %d: log is %d bytes, recorded %d', this.runId, size, this.final.next);
      this.recordedSize = this.final.next;
      this.final = { ...this.final, next: size };
    }
  }

  /** A finished log that is shorter than the run's record: what was recorded (else null). */
  recordedSize: number | null = null;

  /** The run has ended and its log is `size` bytes: deliver the rest, then `complete`. */
  end(size: number, complete: Omit<CompleteMessage, 'next'>): void {
    if (this.ending || this.final) return;
    this.ending = { size, complete };
    void this.pump();
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
        void this.pump();
      }, wait);
      return;
    }
    this.pumping = true;
    this.lastRead = performance.now();
    this.dirty = false;
    try {
      await this.readAppended();
      if (this.ending && !this.dirty && !this.final && !this.closed) this.finish();
    } catch (error) {
      debug('run %d: read failed: %s', this.runId, (error as Error).message);
    } finally {
      this.pumping = false;
    }
    // Hints that came during the read: one more read, paced by MIN_READ_INTERVAL_MS.
    if (this.dirty && !this.closed) void this.pump();
  }

  private async readAppended(): Promise<void> {
    if (this.final || this.closed) return;
    const handle = await this.ensureOpen();
    if (!handle || !this.splitter) return;
    if (await this.wasReset(handle)) return;
    const limit = this.ending ? this.ending.size : Number.POSITIVE_INFINITY;
    while (this.readPosition < limit && !this.closed) {
      const { bytesRead } = await handle.read(this.buffer, 0, Math.min(READ_CHUNK, limit - this.readPosition), this.readPosition);
      if (bytesRead === 0) break;
      this.readPosition += bytesRead;
      // Lines are decoded only for subscribers at the live edge; the others read the file themselves.
      const live = this.hasLiveSubscriber();
      const batch = this.splitter.push(this.buffer.subarray(0, bytesRead), live ? 'json' : 'none');
      if (lineCount(batch) > 0) this.broadcast(batch);
      else if (!live) {
        this.recent.clear(); // a gap: later frames no longer follow these
        this.wakeAhead();
      }
    }
  }

  private hasLiveSubscriber(): boolean {
    for (const subscriber of this.subscribers) if (subscriber.mode === 'live') return true;
    return false;
  }

  /** Subscribers that asked for an offset past the live edge: joined or caught up once it gets there. */
  private wakeAhead(): void {
    for (const subscriber of this.subscribers) {
      if (subscriber.mode !== 'ahead' || subscriber.next > this.committed) continue;
      if (subscriber.next === this.committed) subscriber.mode = 'live';
      else this.catchUp(subscriber);
    }
  }

  /**
   * A log truncated or replaced under us: offsets no longer mean what subscribers were told.
   * Each subscriber gets an explicit `log_reset` error and its subscription ends (nothing is
   * re-sent as new); the reader starts over on the file as it now is.
   */
  private async wasReset(handle: LogHandle): Promise<boolean> {
    const truncated = (await handle.stat()).size < this.readPosition;
    const replaced = !truncated && (await this.options.source.isReplaced(handle));
    if (!truncated && !replaced) return false;
    debug('run %d: log %s', this.runId, truncated ? 'truncated' : 'replaced');
    const frame = JSON.stringify({
      type: 'error',
      code: 'log_reset',
      run_id: this.runId,
      message: `The log of run ${this.runId} was ${truncated ? 'truncated' : 'replaced'} while being read; earlier offsets no longer apply. Subscribe again to read it as it is now.`,
    });
    for (const subscriber of [...this.subscribers]) {
      subscriber.sink.send('error', frame);
      this.endSubscription(subscriber);
    }
    this.recent.clear();
    this.shared.clear();
    this.handle = null;
    this.splitter = null;
    await handle.close().catch(() => {});
    queueMicrotask(() => this.options.onIdle?.());
    return true;
  }

  private finish(): void {
    const last = this.splitter ? this.splitter.flush(false, 'json') : null;
    if (last && lineCount(last) > 0) this.broadcast(last);
    this.final = { ...this.ending!.complete, next: this.splitter?.committed ?? 0 };
    const frame = JSON.stringify(this.final);
    for (const subscriber of this.subscribers) {
      if (subscriber.mode === 'live' || (subscriber.mode === 'ahead' && subscriber.next >= this.final.next)) this.complete(subscriber, frame);
      else this.catchUp(subscriber);
    }
  }

  private broadcast(batch: LineBatch): void {
    const frame = linesFrame(this.runId, batch);
    this.recent.add(batch.offset, batch.next, frame);
    for (const subscriber of this.subscribers) {
      if (subscriber.mode === 'live') {
        if (subscriber.sink.congested()) {
          // Paused where it is; once its socket drains it catches up from the recent frames or the file.
          this.catchUp(subscriber);
          continue;
        }
        subscriber.sink.send('lines', frame, batch.next);
        subscriber.next = batch.next;
      } else if (subscriber.mode === 'ahead' && subscriber.next <= batch.next) {
        if (subscriber.next === batch.next) subscriber.mode = 'live';
        else this.catchUp(subscriber);
      }
    }
  }

  /**
   * Adds a subscriber at `offset` (a boundary a message gave, or a tail start); it is sent nothing
   * until start(), so the caller can register it first (it may complete at once).
   */
  add(sink: LogSink, offset: number, onEnd?: () => void): Subscriber {
    const subscriber: Subscriber = { sink, next: offset, mode: 'catching_up', reading: false, onEnd };
    this.subscribers.add(subscriber);
    return subscriber;
  }

  start(subscriber: Subscriber): void {
    this.catchUp(subscriber);
  }

  /** The subscriber left (unsubscribe, disconnect): no `onEnd`. */
  remove(subscriber: Subscriber): void {
    subscriber.mode = 'done';
    this.subscribers.delete(subscriber);
  }

  /** The reader ends the subscription (`complete`, `log_reset`): the owner hears of it. */
  private endSubscription(subscriber: Subscriber): void {
    if (subscriber.mode === 'done') return;
    this.remove(subscriber);
    subscriber.onEnd?.();
    if (this.subscribers.size === 0) queueMicrotask(() => this.options.onIdle?.());
  }

  /** A finished log turned out shorter than this subscriber's offset: its offsets no longer apply. */
  private resetOne(subscriber: Subscriber): void {
    subscriber.sink.send('error', JSON.stringify({
      type: 'error',
      code: 'log_reset',
      run_id: this.runId,
      message: `The log of run ${this.runId} is shorter than when it was read (${this.committed} bytes now); earlier offsets no longer apply. Subscribe again to read it as it is now.`,
    }));
    this.endSubscription(subscriber);
  }

  /** Reads from the subscriber's own offset until it reaches the live edge (or the end). */
  private catchUp(subscriber: Subscriber): void {
    if (subscriber.mode === 'done') return;
    subscriber.mode = 'catching_up';
    if (subscriber.reading) return;
    subscriber.reading = true;
    this.catchUpLoop(subscriber)
      .catch((error: unknown) => debug('run %d: catch-up failed: %s', this.runId, (error as Error).message))
      .finally(() => (subscriber.reading = false));
  }

  private async catchUpLoop(subscriber: Subscriber): Promise<void> {
    while (subscriber.mode === 'catching_up' && !subscriber.sink.closed && !this.closed) {
      const target = this.committed;
      if (subscriber.next >= target) {
        if (this.final) {
          this.complete(subscriber, JSON.stringify(this.final));
          return;
        }
        subscriber.mode = subscriber.next === target ? 'live' : 'ahead';
        return;
      }
      if (subscriber.sink.congested()) {
        await subscriber.sink.drained();
        continue;
      }
      if (this.sendRecent(subscriber)) continue;
      const handle = await this.ensureOpen();
      if (!handle) {
        if (this.final) this.resetOne(subscriber); // a finished log that vanished meanwhile
        return;
      }
      const start = subscriber.next;
      const read = () => this.readFrame(handle, start, target);
      // Alone, there is nobody to share a read with (and nothing to keep in memory for).
      const frame = this.catchingUpCount() > 1 ? await this.shared.get(start, read) : await read();
      if (subscriber.mode !== 'catching_up' || subscriber.sink.closed) return;
      if (!frame) {
        // Nothing readable: the file shrank. A live log's reader notices and resets everyone; a
        // finished log is read by nobody else, so this subscriber is told now.
        if (this.final) this.resetOne(subscriber);
        return;
      }
      subscriber.sink.send('lines', frame.frame, frame.next);
      subscriber.next = frame.next;
    }
  }

  /** The lines from `start` (a boundary) to the next grid line or `target`, framed; null if none. */
  private async readFrame(handle: LogHandle, start: number, target: number): Promise<ReadFrame | null> {
    // `target` is a boundary: a newline, a piece cut, or the end of a finished log.
    const rangeEnd = this.final ? 'final' : 'piece';
    // A read holds at least one whole piece of a line, so every read makes progress.
    const end = this.shared.endFor(start, this.options.maxLineBytes + 4);
    const batch = await readLines(handle, start, target, this.options.maxLineBytes, end - start, rangeEnd, 'json');
    return batch.next === start ? null : { next: batch.next, frame: linesFrame(this.runId, batch) };
  }

  private catchingUpCount(): number {
    let count = 0;
    for (const subscriber of this.subscribers) if (subscriber.mode === 'catching_up') count++;
    return count;
  }

  /** Sends the recent frames from the subscriber's offset, while its socket takes them; false if none start there. */
  private sendRecent(subscriber: Subscriber): boolean {
    const frames = this.recent.from(subscriber.next);
    if (!frames) return false;
    for (const { frame, next } of frames) {
      if (subscriber.sink.congested()) break;
      subscriber.sink.send('lines', frame, next);
      subscriber.next = next;
    }
    return true;
  }

  private complete(subscriber: Subscriber, frame: string): void {
    subscriber.sink.send('complete', frame, this.final!.next);
    this.endSubscription(subscriber);
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.trailing) clearTimeout(this.trailing);
    for (const subscriber of this.subscribers) subscriber.mode = 'done';
    this.subscribers.clear();
    this.shared.clear();
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => {});
  }
}
