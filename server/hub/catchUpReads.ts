import { readLines } from '../logs/logFile.js';
import type { LogHandle } from '../logs/logSource.js';
import type { LineTimes } from '../logs/lineTimes.js';
import { linesFrame, type LogSink } from './messages.js';
import { RecentFrames } from './recentFrames.js';
import { SharedReads, type ReadFrame } from './sharedReads.js';

/** Catch-up reads end on multiples of this (or of the longest line, if longer): see SharedReads. */
const CATCH_UP_GRID = 512 * 1024;
/** Frames read for catching up, kept per run for the subscribers behind it (only while several are). */
const SHARED_READ_BYTES = 8 * 1024 * 1024;
/** Frames kept for subscribers that paused (see RecentFrames): bounded per run, not per subscriber. */
const RECENT_BYTES = 16 * 1024 * 1024;
const RECENT_MS = 5000;

/**
 * What a subscriber behind the live edge is sent: the run's recent frames, else reads of the log.
 * Frames with the lines' times (for subscribers that asked) are kept and shared apart from the
 * others, so asking for times costs a second framing, not a read per subscriber.
 */
export class CatchUpReads {
  private readonly recent = { plain: new RecentFrames(RECENT_BYTES, RECENT_MS), timed: new RecentFrames(RECENT_BYTES, RECENT_MS) };
  private readonly shared: { plain: SharedReads; timed: SharedReads };

  constructor(private readonly runId: number, private readonly maxLineBytes: number) {
    // The grid is at least a line's longest piece, so subscribers fall into step after one read.
    const grid = Math.max(CATCH_UP_GRID, maxLineBytes + 4);
    this.shared = { plain: new SharedReads(grid, SHARED_READ_BYTES), timed: new SharedReads(grid, SHARED_READ_BYTES) };
  }

  /** A frame sent at the live edge (and its variant with times, if one was made), kept for subscribers that pause. */
  keep(offset: number, next: number, frame: Buffer, timed: Buffer | null): void {
    this.recent.plain.add(offset, next, frame);
    if (timed) this.recent.timed.add(offset, next, timed);
  }

  /** Bytes went by unframed: later frames no longer follow the kept ones. */
  gap(): void {
    this.recent.plain.clear();
    this.recent.timed.clear();
  }

  /** The log was reset: nothing kept applies. */
  clear(): void {
    this.gap();
    this.shared.plain.clear();
    this.shared.timed.clear();
  }

  /** Sends the recent frames from the subscriber's offset while its socket takes them; false if none start there. */
  sendRecent(subscriber: { sink: LogSink; next: number; timestamps: boolean }): boolean {
    const frames = this.recent[subscriber.timestamps ? 'timed' : 'plain'].from(subscriber.next);
    if (!frames) return false;
    for (const { frame, next } of frames) {
      if (subscriber.sink.congested()) break;
      subscriber.sink.send('lines', frame, next);
      subscriber.next = next;
    }
    return true;
  }

  /**
   * The lines from `start` (a boundary) to the next grid line or `target`, framed; null if none.
   * `shared`: others are catching up too, so reads on the grid are shared (alone, nothing is kept).
   * `times`: the frame carries the lines' times, from these records (null: not asked for).
   */
  read(handle: LogHandle, start: number, target: number, final: boolean, how: { shared: boolean; times: LineTimes | null }): Promise<ReadFrame | null> {
    const read = async () => {
      // `target` is a boundary: a newline, a piece cut, or the end of a finished log.
      // A read holds at least one whole piece of a line, so every read makes progress.
      const end = this.shared.plain.endFor(start, this.maxLineBytes + 4);
      const timed = how.times !== null;
      const batch = await readLines(handle, start, target, this.maxLineBytes, end - start, final ? 'final' : 'piece', 'json', timed);
      if (how.times && batch.ends) batch.times = (await how.times.span(start, batch.next)).timesOf(batch.ends, final ? null : Date.now());
      return batch.next === start ? null : { next: batch.next, frame: linesFrame(this.runId, batch, timed) };
    };
    return how.shared ? this.shared[how.times === null ? 'plain' : 'timed'].get(start, read) : read();
  }
}
