import fs from 'node:fs/promises';
import type { LogWatcher } from './logWatcher.js';

/** Positional reads of one log, as fs.FileHandle does them (a local file is one as it is). */
export interface LogHandle {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** `size`: bytes readable now; `ino`: which log this handle reads (changes when it is replaced) */
  stat(): Promise<{ size: number; ino: number }>;
  close(): Promise<void>;
}

/**
 * Where a run's log is read from: open it, learn that it grew, learn that it was replaced. The
 * local file is today's; a log shipped through Redis Streams is the cluster's. Offsets are bytes
 * of the log either way.
 */
export interface LogSource {
  /** A handle for positional reads; null while the log does not exist yet. */
  open(): Promise<LogHandle | null>;
  /**
   * True when the log at this source's place is no longer the one `handle` reads, as of the handle's
   * last `stat` at the latest (a Redis stream learns it in that call: asked right after one, no call more).
   */
  isReplaced(handle: LogHandle): Promise<boolean>;
  /** Calls `hint` when bytes may have been appended (a hint, never data); returns how to stop. */
  watch(hint: () => void): () => void;
  /** The runner's time records of this log (see lineTimes.ts); null while (or where) there are none. */
  openTimes(): Promise<LogHandle | null>;
  /**
   * A finished log found shorter than the run's record is unavailable (cluster mode: its bytes are
   * on their way to the archive, or lost), not complete at what there is (a file truncated on disk).
   */
  readonly shortIsUnavailable?: boolean;
  /**
   * A running log here can be shorter for a while than what a client has read (cluster mode: Redis
   * lost the stream, and the worker ships it again, the same bytes at the same offsets, from its
   * file): an offset past its end waits for the log to get there instead of being refused.
   */
  readonly mayRegrow?: boolean;
}

/** A file for positional reads; null if it does not exist (yet). */
export async function openIfExists(file: string): Promise<LogHandle | null> {
  try {
    return await fs.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** A run's log file on this machine. */
export class LocalLogSource implements LogSource {
  constructor(readonly file: string, private readonly watcher?: LogWatcher, private readonly timesFile?: string) {}

  open(): Promise<LogHandle | null> {
    return openIfExists(this.file);
  }

  async openTimes(): Promise<LogHandle | null> {
    return this.timesFile ? openIfExists(this.timesFile) : null;
  }

  async isReplaced(handle: LogHandle): Promise<boolean> {
    const [open, current] = await Promise.all([handle.stat(), fs.stat(this.file).catch(() => null)]);
    return current !== null && current.ino !== open.ino;
  }

  watch(hint: () => void): () => void {
    if (!this.watcher) throw new Error(`No watcher for ${this.file}`);
    this.watcher.watch(this.file, hint);
    return () => this.watcher!.unwatch(this.file);
  }
}
