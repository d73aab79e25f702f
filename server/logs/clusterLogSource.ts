import { logUnavailable } from '../errors.js';
import type { Redis } from './redisClient.js';
import type { ObjectStore } from './archive.js';
import { openLiveLog, openLiveTimes } from './liveChunks.js';
import type { LogHandle, LogSource } from './logSource.js';
import { RedisLogSource } from './redisLogStream.js';

/**
 * A run's log in cluster mode: from the archive once it is there, else from its stream, and a
 * stream that went away under a reader (expired after archiving) is read on from the archive.
 */
export class ClusterLogSource implements LogSource {
  private readonly stream: RedisLogSource;
  readonly shortIsUnavailable = true;
  readonly mayRegrow = true;

  /**
   * `key`, `timesKey`: the log's and its time records' names in the archive (which holds a running
   * log's chunks too); `finishedSize`: the recorded size of a finished run's log (0 for a running run)
   */
  constructor(private readonly redis: Redis, private readonly runId: number, private readonly archive: ObjectStore, private readonly key: string, private readonly timesKey?: string, private readonly finishedSize = 0) {
    this.stream = new RedisLogSource(redis, runId);
  }

  /** The log, archived or live; a finished log neither holds whole is unavailable (503), never short. */
  async open(): Promise<LogHandle | null> {
    const archived = await this.archive.open(this.key);
    if (archived) return archived;
    const openArchive = () => this.archive.open(this.key);
    const stream = await openLiveLog(this.redis, this.archive, this.runId, openArchive);
    if (this.finishedSize > 0) {
      const found = stream ? (await stream.stat()).size : 0;
      if (found < this.finishedSize) {
        // Archived meanwhile (its stream then expires): read it from there.
        const late = await this.archive.open(this.key);
        if (late) {
          await stream?.close();
          return late;
        }
        await stream?.close();
        throw logUnavailable(this.runId, this.finishedSize, found);
      }
    }
    return stream && new FallbackHandle(stream, openArchive);
  }

  /** The time records, where the log is: archived, else in Redis (read on from the archive once that copy expires). */
  async openTimes(): Promise<LogHandle | null> {
    const timesKey = this.timesKey;
    if (!timesKey) return null;
    // Redis first (cheap; a long run's older times from their chunks); the archive once the copy has expired.
    const openArchive = () => this.archive.open(timesKey);
    const copy = await openLiveTimes(this.redis, this.archive, this.runId, openArchive);
    if (copy) return new FallbackHandle(copy, openArchive);
    return this.archive.open(timesKey);
  }

  async isReplaced(handle: LogHandle): Promise<boolean> {
    return handle instanceof FallbackHandle ? handle.onStream && (await this.stream.isReplaced(handle.stream)) : false;
  }

  watch(hint: () => void): () => void {
    return this.stream.watch(hint);
  }
}

/**
 * Reads the stream; when it is gone (expired once archived), reads on from the archive. The stream
 * is looked at only when a read comes back empty (a live reader reads up to the size it just got,
 * so that is rare): a look per read was a Redis call per read, three per stat.
 */
class FallbackHandle implements LogHandle {
  private archived: LogHandle | null = null;

  constructor(readonly stream: LogHandle, private readonly openArchive: () => Promise<LogHandle | null>) {}

  get onStream(): boolean {
    return this.archived === null;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (!this.archived) {
      const read = await this.stream.read(buffer, offset, length, position);
      if (read.bytesRead > 0 || (await this.stream.stat()).size > 0) return read;
      this.archived = await this.openArchive();
      if (!this.archived) return read;
    }
    return this.archived.read(buffer, offset, length, position);
  }

  async stat(): Promise<{ size: number; ino: number }> {
    const stream = await this.stream.stat();
    if (!this.archived && stream.size > 0) return stream;
    this.archived ??= await this.openArchive();
    return this.archived ? { size: (await this.archived.stat()).size, ino: stream.ino } : stream;
  }

  async close(): Promise<void> {
    await this.archived?.close();
    await this.stream.close(); // a chunked stream holds a chunk open
  }
}
