import { debuglog } from 'node:util';
import { errorBody, protocolError, type HubError } from '../errors.js';
import type { LineBatch } from '../logs/lineSplitter.js';
import type { LogHandle, LogSource } from '../logs/logSource.js';
import { LineTimes } from '../logs/lineTimes.js';
import { LiveReader } from './liveReader.js';
import { linesFrame, type CompleteMessage, type LogSink } from './messages.js';
import { CatchUpReads } from './catchUpReads.js';

const debug = debuglog('hub:tail');
/** A catch-up read that failed (Redis or the archive away: their calls have deadlines) is tried again after this. */
const CATCH_UP_RETRY_MS = 1000;

export const SUBSCRIBER_MODES = ['catching_up', 'live', 'ahead', 'done'] as const;
export type SubscriberMode = (typeof SUBSCRIBER_MODES)[number];

export interface Subscriber {
  readonly sink: LogSink;
  /** the first byte this subscriber has not been sent */
  next: number;
  /** live: gets the shared frames; catching_up: reads on its own; ahead: waits for the live edge to reach it */
  mode: SubscriberMode;
  /** a catch-up loop is running for it */
  reading: boolean;
  /** it asked for the lines' times: its frames carry `times` (a variant framed once per batch, or per shared read) */
  readonly timestamps: boolean;
  /** called when the reader ends the subscription itself (`complete`, `log_reset`), not on remove() */
  readonly onEnd?: () => void;
}

export interface TailOptions {
  runId: number;
  source: LogSource;
  maxLineBytes: number;
  /** called when the last subscriber has left (after `complete` or `log_reset`) */
  onIdle?: () => void;
}

/**
 * The subscribers of one run. Those at the live edge get each batch the LiveReader reads as one
 * shared frame; the others (late, resuming, or paused because their socket is full) catch up by
 * reading the log from their own offset (sharing recent frames and concurrent reads), then join
 * the live edge. So a slow subscriber never slows the others, and nothing is held on its behalf.
 */
export class RunTail {
  readonly subscribers = new Set<Subscriber>();
  private readonly live: LiveReader;
  private closed = false;
  private readonly behind: CatchUpReads;
  /** the log's time records, opened only once a subscriber asks for times */
  private readonly times: LineTimes;
  /** the run ended and its log could not be read to its end: the error frame every subscriber is told */
  private unavailable: string | null = null;

  constructor(private readonly options: TailOptions) {
    const { source } = options;
    this.times = new LineTimes(() => source.openTimes());
    this.behind = new CatchUpReads(options.runId, options.maxLineBytes);
    this.live = new LiveReader(options.runId, options.source, options.maxLineBytes, {
      opened: (start) => this.liveOnOpened(start),
      wantsLines: () => this.hasLiveSubscriber(),
      wantsTimes: () => this.hasLiveSubscriber(true),
      lines: (batch) => this.broadcast(batch),
      skipped: () => {
        this.behind.gap();
        this.wakeAhead();
      },
      reset: (how) => this.liveOnReset(how),
      final: (complete) => this.liveOnFinal(complete),
      unavailable: (error) => this.liveOnUnavailable(error),
    }, this.times);
  }

  get runId(): number {
    return this.options.runId;
  }

  /** The offset every live subscriber is at: the end of the last line delivered. */
  get committed(): number {
    return this.live.committed;
  }

  /** A running log here may be shorter for a while than what a client read (see LogSource.mayRegrow). */
  get mayRegrow(): boolean {
    return this.options.source.mayRegrow === true;
  }

  get isFinal(): boolean {
    return this.live.final !== null;
  }

  /** A finished log that is shorter than the run's record: what was recorded (else null). */
  get recordedSize(): number | null {
    return this.live.recordedSize;
  }

  /** For a finished run: nothing to follow, subscribers read up to its final size. */
  finishAt(complete: CompleteMessage): void {
    this.live.finishAt(complete);
  }

  ensureOpen(): Promise<LogHandle | null> {
    return this.live.ensureOpen();
  }

  /** The run has ended and its log is `size` bytes: deliver the rest, then `complete`. */
  end(size: number, complete: Omit<CompleteMessage, 'next'>): void {
    this.live.end(size, complete);
  }

  /** A watcher hint. */
  pump(): Promise<void> {
    return this.live.pump();
  }

  /** Subscribers that joined before the log existed are not at its live edge: they catch up. */
  private liveOnOpened(start: number): void {
    for (const subscriber of this.subscribers) if (subscriber.mode !== 'done' && subscriber.next !== start) this.catchUp(subscriber);
  }

  private hasLiveSubscriber(timed = false): boolean {
    for (const subscriber of this.subscribers) if (subscriber.mode === 'live' && (!timed || subscriber.timestamps)) return true;
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
   * A log truncated or replaced under us: offsets no longer mean what subscribers were told. Each
   * subscriber gets an explicit `log_reset` error and its subscription ends (nothing is re-sent
   * as new); the next subscriber reads the log as it now is.
   */
  private liveOnReset(how: 'truncated' | 'replaced'): void {
    this.endAll(this.resetFrame(`The log of run ${this.runId} was ${how} while being read; earlier offsets no longer apply. Subscribe again to read it as it is now.`));
  }

  /**
   * The run ended and its log cannot be read to its end here: every subscriber is told (a retryable
   * `log_unavailable`, as HTTP's 503) and its subscription ends; subscribing again finds the log
   * once it is whole in a store (its worker archives it), or is told again.
   */
  private liveOnUnavailable(error: HubError): void {
    this.unavailable = JSON.stringify({ type: 'error', ...errorBody(error) });
    this.endAll(this.unavailable);
  }

  /** Every subscriber gets `frame` (an error) and its subscription ends; nothing recent is kept for catch-ups. */
  private endAll(frame: string): void {
    for (const subscriber of [...this.subscribers]) this.endWith(subscriber, frame);
    this.behind.clear();
    queueMicrotask(() => this.options.onIdle?.());
  }

  /**
   * Every byte is read: those at the end get `complete`; the others catch up to it first; one that
   * waited past the end (an offset a log that may regrow never reached again) is told its offset no
   * longer applies.
   */
  private liveOnFinal(complete: CompleteMessage): void {
    const frame = JSON.stringify(complete);
    for (const subscriber of [...this.subscribers]) {
      if (subscriber.mode === 'ahead' && subscriber.next > complete.next) this.resetOne(subscriber);
      else if (subscriber.mode === 'live' || (subscriber.mode === 'ahead' && subscriber.next === complete.next)) this.complete(subscriber, frame);
      else this.catchUp(subscriber);
    }
  }

  private broadcast(batch: LineBatch): void {
    const frame = linesFrame(this.runId, batch);
    // Made when the batch was stamped (someone at the live edge asked for times), kept for pauses too.
    let timed: Buffer | null = batch.times ? linesFrame(this.runId, batch, true) : null;
    this.behind.keep(batch.offset, batch.next, frame, timed);
    for (const subscriber of this.subscribers) {
      if (subscriber.mode === 'live') {
        if (subscriber.sink.congested()) {
          // Paused where it is; once its socket drains it catches up from the recent frames or the file.
          this.catchUp(subscriber);
          continue;
        }
        if (subscriber.timestamps) timed ??= linesFrame(this.runId, batch, true);
        subscriber.sink.send('lines', subscriber.timestamps ? timed! : frame, batch.next);
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
  add(sink: LogSink, offset: number, onEnd?: () => void, timestamps = false): Subscriber {
    const subscriber: Subscriber = { sink, next: offset, mode: 'catching_up', reading: false, onEnd, timestamps };
    this.subscribers.add(subscriber);
    return subscriber;
  }

  start(subscriber: Subscriber): void {
    // (one that was being added as the reader found the log unavailable)
    if (this.unavailable) this.endWith(subscriber, this.unavailable);
    else this.catchUp(subscriber);
  }

  private endWith(subscriber: Subscriber, frame: string): void {
    subscriber.sink.send('error', frame);
    this.endSubscription(subscriber);
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
    this.endWith(subscriber, this.resetFrame(`The log of run ${this.runId} is shorter than when it was read (${this.committed} bytes now); earlier offsets no longer apply. Subscribe again to read it as it is now.`));
  }

  /** Reads from the subscriber's own offset until it reaches the live edge (or the end). */
  private catchUp(subscriber: Subscriber): void {
    if (subscriber.mode === 'done') return;
    subscriber.mode = 'catching_up';
    if (subscriber.reading) return;
    subscriber.reading = true;
    let failed = false;
    this.catchUpLoop(subscriber)
      .catch((error: unknown) => {
        debug('run %d: catch-up failed: %s', this.runId, (error as Error).message);
        failed = true;
      })
      .finally(() => {
        subscriber.reading = false;
        // Redis or the archive away (their calls have deadlines): tried again, from where it was.
        if (!failed) return;
        setTimeout(() => {
          if (subscriber.mode === 'catching_up' && !subscriber.sink.closed && !this.closed) this.catchUp(subscriber);
        }, CATCH_UP_RETRY_MS).unref();
      });
  }

  private async catchUpLoop(subscriber: Subscriber): Promise<void> {
    while (subscriber.mode === 'catching_up' && !subscriber.sink.closed && !this.closed) {
      const target = this.committed;
      if (subscriber.next >= target) {
        if (this.live.final) {
          this.complete(subscriber, JSON.stringify(this.live.final));
          return;
        }
        subscriber.mode = subscriber.next === target ? 'live' : 'ahead';
        return;
      }
      if (subscriber.sink.congested()) {
        await subscriber.sink.drained();
        continue;
      }
      if (this.behind.sendRecent(subscriber)) continue;
      const handle = await this.ensureOpen();
      if (!handle) {
        if (this.live.final) this.resetOne(subscriber); // a finished log that vanished meanwhile
        return;
      }
      // Alone, there is nobody to share a read with (and nothing to keep in memory for).
      const frame = await this.behind.read(handle, subscriber.next, target, this.live.final !== null, {
        shared: this.catchingUpCount() > 1,
        times: subscriber.timestamps ? this.times : null,
      });
      if (subscriber.mode !== 'catching_up' || subscriber.sink.closed) return;
      if (!frame) {
        // Nothing readable: the file shrank. A live log's reader notices and resets everyone; a
        // finished log is read by nobody else, so this subscriber is told now.
        if (this.live.final) this.resetOne(subscriber);
        return;
      }
      subscriber.sink.send('lines', frame.frame, frame.next);
      subscriber.next = frame.next;
    }
  }

  private catchingUpCount(): number {
    let count = 0;
    for (const subscriber of this.subscribers) if (subscriber.mode === 'catching_up') count++;
    return count;
  }

  private complete(subscriber: Subscriber, frame: string): void {
    subscriber.sink.send('complete', frame, this.live.final!.next);
    this.endSubscription(subscriber);
  }

  private resetFrame(message: string): string {
    return JSON.stringify({ type: 'error', ...errorBody(protocolError('log_reset', message, { run_id: this.runId })) });
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const subscriber of this.subscribers) subscriber.mode = 'done';
    this.subscribers.clear();
    this.behind.clear();
    await this.live.close();
    await this.times.close();
  }
}
