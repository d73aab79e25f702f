import fs from 'node:fs/promises';
import type { Redis } from './redisClient.js';
import type { ObjectStore } from './archive.js';
import type { LogHandle } from './logSource.js';
import { defineScript } from './redisScript.js';
import { TIME_RECORD_BYTES } from '../../pipeline-runner/logClock.js';
import { CHECK_EPOCH, chunksKey, epochKey, fenced, RedisLogSource, type StreamLogHandle, tag, type TimesBelow, timesBaseKey, timesKey } from './redisLogStream.js';

/**
 * A running log's full chunks live in the object store, and its Redis stream keeps only the tail
 * (GitLab's chunked live logs): Redis memory per running run stays under two chunks whatever the
 * log's length. The worker uploads each chunk once the stream holds all of it, then records it and
 * trims the stream below it in one script; readers read below the recorded mark from the chunks
 * and the rest from the stream, at the same offsets. A chunk is the log file's bytes at its
 * offsets, so one uploaded twice, or before a Redis restart, is still right. The log's times file
 * goes the same way in chunks of its own (whole records, an eighth of the log's chunk): a busy
 * run's times grow about 1.2 KB a second, which over hours would be most of its Redis memory.
 */

/** The default chunk size (`HUB_LOG_CHUNK_BYTES`). */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * The object of the chunk of run `runId` that starts at byte `start`. Run ids are unique in the
 * cluster, so the key needs no project: whoever removes a run's chunks needs only its id.
 */
export const chunkKey = (runId: number, start: number) => `live/${runId}/${start}`;

/** The object of the times chunk of run `runId` that starts at byte `start` of its times file. */
export const timesChunkKey = (runId: number, start: number) => `live/${runId}/times/${start}`;

/** A times chunk: whole records, about an eighth of the log's chunk (at least one record). */
export const timesChunkBytes = (logChunkBytes: number) => Math.max(1, Math.floor(logChunkBytes / 8 / TIME_RECORD_BYTES)) * TIME_RECORD_BYTES;

/**
 * Records that the chunks below ARGV[1] (of size ARGV[2]) are stored, under lease epoch ARGV[3],
 * and trims the stream's entries that lie wholly below it; returns the mark recorded.
 */
const RECORD = `${CHECK_EPOCH(3)}
local record = redis.call('GET', KEYS[2])
local held = 0
if record then held = tonumber(string.match(record, '^(%d+)')) end
local chunked = tonumber(ARGV[1])
if chunked <= held then return held end
redis.call('SET', KEYS[2], ARGV[1] .. ',' .. ARGV[2])
local entry = redis.call('XREVRANGE', KEYS[1], ARGV[1] .. '-1', '-', 'COUNT', 1)
if entry[1] then redis.call('XTRIM', KEYS[1], 'MINID', entry[1][1]) end
return chunked
`;

const recordScript = defineScript<number>('hubLogRecordChunks', RECORD);

/**
 * Records that the times file's chunks below ARGV[1] (of size ARGV[2]) are stored, under lease
 * epoch ARGV[3], and cuts them off the copy in KEYS[1] (a string cannot drop its start in place:
 * the tail, under two times chunks, is written again); returns where the copy starts now.
 */
const RECORD_TIMES = `${CHECK_EPOCH(3)}
local record = redis.call('GET', KEYS[2])
local base = 0
if record then base = tonumber(string.match(record, '^(%d+)')) end
local chunked = tonumber(ARGV[1])
if chunked <= base then return base end
local length = redis.call('STRLEN', KEYS[1])
if chunked > base + length then return base end
redis.call('SET', KEYS[1], redis.call('GETRANGE', KEYS[1], chunked - base, -1))
redis.call('SET', KEYS[2], ARGV[1] .. ',' .. ARGV[2])
return chunked
`;

const recordTimesScript = defineScript<number>('hubLogRecordTimesChunks', RECORD_TIMES);

/** Records chunks stored below `chunked` and trims the stream; LeaseLostError under a stale epoch. */
export async function recordChunks(redis: Redis, runId: number, chunked: number, chunkBytes: number, epoch: number): Promise<number> {
  return fenced(runId, Number(await recordScript(redis, [tag(runId), chunksKey(runId), epochKey(runId)], [chunked, chunkBytes, epoch])));
}

/** Records times chunks stored below `chunked` and cuts them off the copy; LeaseLostError under a stale epoch. */
export async function recordTimesChunks(redis: Redis, runId: number, chunked: number, chunkBytes: number, epoch: number): Promise<number> {
  return fenced(runId, Number(await recordTimesScript(redis, [timesKey(runId), timesBaseKey(runId), epochKey(runId)], [chunked, chunkBytes, epoch])));
}

export interface ChunkMark {
  /** bytes below this are in chunks, not in the stream */
  chunked: number;
  chunkBytes: number;
  /** bytes of the times file below this are in chunks, not in Redis */
  timesChunked: number;
  timesChunkBytes: number;
}

/** What the run's records say is in chunks (nothing: 0). */
export async function readChunkMark(redis: Redis, runId: number): Promise<ChunkMark> {
  const [log, times] = (await redis.mget(chunksKey(runId), timesBaseKey(runId))).map((record) => (record ? /^(\d+),(\d+)$/.exec(record) : null));
  return {
    chunked: log ? Number(log[1]) : 0,
    chunkBytes: log ? Number(log[2]) : CHUNK_BYTES,
    timesChunked: times ? Number(times[1]) : 0,
    timesChunkBytes: times ? Number(times[2]) : timesChunkBytes(CHUNK_BYTES),
  };
}

/** Deletes a run's chunk objects, the log's and its times', below `mark` (once its archive holds the log, or it is purged). */
export async function deleteChunks(objects: ObjectStore, runId: number, mark: ChunkMark): Promise<void> {
  for (let start = 0; start < mark.chunked; start += mark.chunkBytes) await objects.delete(chunkKey(runId, start));
  for (let start = 0; start < mark.timesChunked; start += mark.timesChunkBytes) await objects.delete(timesChunkKey(runId, start));
}

/** How much of each file Redis holds now: the stream's length and the times copy's. */
export interface Shipped {
  log: number;
  times: number;
}

/**
 * The worker's side: as the stream and the times copy grow, uploads each full chunk from the log
 * file and from the times file, then records it (trimming Redis). One pass at a time; a failure is
 * tried again at the next `advance`.
 */
export class ChunkUploader {
  private uploaded = 0;
  private timesUploaded = 0;
  private readonly timesChunkBytes: number;
  private running: Promise<void> | null = null;
  private again: Shipped | null = null;
  private closed = false;

  /** `timesFile`: the log's times file (none: only the log is chunked) */
  constructor(
    private readonly redis: Redis,
    private readonly objects: ObjectStore,
    private readonly runId: number,
    private readonly file: string,
    private readonly chunkBytes: number,
    private readonly epoch: number,
    private readonly timesFile?: string,
  ) {
    this.timesChunkBytes = timesChunkBytes(chunkBytes);
  }

  /** Bytes recorded as chunks (the stream no longer holds them). */
  get chunked(): number {
    return this.uploaded;
  }

  /** Redis holds `shipped` bytes of each file: upload the full chunks below. Rejects with the pass's failure. */
  advance(shipped: Shipped): Promise<void> {
    if (this.closed) return Promise.resolve();
    // A stream lost with Redis (restarted empty) is shipped again from 0 and holds its start again
    // until the next full chunk: its record then covers all below it, whose chunks are stored.
    const full = shipped.log >= this.uploaded + this.chunkBytes || (this.timesFile !== undefined && shipped.times >= this.timesUploaded + this.timesChunkBytes);
    if (!full) return this.running ?? Promise.resolve();
    if (this.running) {
      this.again = { log: Math.max(this.again?.log ?? 0, shipped.log), times: Math.max(this.again?.times ?? 0, shipped.times) };
      return this.running;
    }
    this.running = this.upload(shipped).finally(() => {
      this.running = null;
      const next = this.again;
      this.again = null;
      if (next !== null) this.advance(next).catch(() => {}); // a failure is tried at the next advance
    });
    return this.running;
  }

  /**
   * No pass starts from now on; waits for the one under way (after this, nothing records a mark:
   * the log is archived next, and a mark set after its stream was set to expire would not expire).
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.running.catch(() => {});
  }

  private async upload(shipped: Shipped): Promise<void> {
    this.uploaded = await this.uploadChunks(this.file, this.uploaded, this.chunkBytes, shipped.log, chunkKey, recordChunks);
    if (this.timesFile) this.timesUploaded = await this.uploadChunks(this.timesFile, this.timesUploaded, this.timesChunkBytes, shipped.times, timesChunkKey, recordTimesChunks);
  }

  /** Uploads the full chunks of `file` from `uploaded` up to `shipped`, recording each; returns how far it got. */
  private async uploadChunks(file: string, uploaded: number, size: number, shipped: number, keyOf: (runId: number, start: number) => string, record: typeof recordChunks): Promise<number> {
    if (uploaded + size > shipped) return uploaded;
    const handle = await fs.open(file, 'r');
    try {
      const buffer = Buffer.allocUnsafe(size);
      while (uploaded + size <= shipped && !this.closed) {
        const { bytesRead } = await handle.read(buffer, 0, size, uploaded);
        if (bytesRead < size) break; // the file is shorter than Redis says (never: it is the source)
        await this.objects.putBytes(keyOf(this.runId, uploaded), buffer);
        // Recorded after each chunk: a reader finds every byte below the mark in a chunk.
        await record(this.redis, this.runId, uploaded + size, size, this.epoch);
        uploaded += size;
      }
      return uploaded;
    } finally {
      await handle.close();
    }
  }
}

/**
 * A running (or finished, not yet archived) log read from Redis and its chunks; null when the run
 * has no stream. `openArchive`: where the bytes below the mark are once the chunks are deleted.
 */
export async function openLiveLog(redis: Redis, objects: ObjectStore, runId: number, openArchive: () => Promise<LogHandle | null>): Promise<ChunkedHandle | null> {
  const stream = await new RedisLogSource(redis, runId).open();
  return stream && new ChunkedHandle(stream, redis, runId, objects, openArchive);
}

/**
 * A run's times as Redis holds them and, below the copy's start, from their chunks (or, once the
 * log is archived and its chunks deleted, from the archive); null when Redis has no copy.
 */
export async function openLiveTimes(redis: Redis, objects: ObjectStore, runId: number, openArchive: () => Promise<LogHandle | null>): Promise<LogHandle | null> {
  return new RedisLogSource(redis, runId).openTimes(new TimesChunks(objects, runId, openArchive));
}

/** Reads a times file's bytes from its chunks, one chunk open at a time; from the archive once they are gone. */
class TimesChunks implements TimesBelow {
  private chunk: { start: number; handle: LogHandle } | null = null;
  private archived: LogHandle | null = null;

  constructor(private readonly objects: ObjectStore, private readonly runId: number, private readonly openArchive: () => Promise<LogHandle | null>) {}

  async read(buffer: Buffer, offset: number, length: number, position: number, chunkBytes: number): Promise<number> {
    const start = position - (position % chunkBytes);
    if (!this.archived && this.chunk?.start !== start) {
      await this.chunk?.handle.close();
      this.chunk = null;
      const handle = await this.objects.open(timesChunkKey(this.runId, start));
      if (handle) this.chunk = { start, handle };
      else this.archived = await this.openArchive();
    }
    if (this.chunk && !this.archived) return (await this.chunk.handle.read(buffer, offset, Math.min(length, start + chunkBytes - position), position - start)).bytesRead;
    return this.archived ? (await this.archived.read(buffer, offset, length, position)).bytesRead : 0;
  }

  async close(): Promise<void> {
    await this.chunk?.handle.close();
    await this.archived?.close();
  }
}

/**
 * The reader's side: a stream handle whose bytes below the chunk mark are read from the chunks
 * (or, once the log is archived and its chunks deleted, from the archive), the rest from Redis.
 */
export class ChunkedHandle implements StreamLogHandle {
  private chunk: { start: number; handle: LogHandle } | null = null;
  private archived: LogHandle | null = null;
  /** the mark as last read: it only grows, so it is read again only when the stream comes up short */
  private mark: ChunkMark | null = null;

  constructor(
    readonly stream: StreamLogHandle,
    private readonly redis: Redis,
    private readonly runId: number,
    private readonly objects: ObjectStore,
    private readonly openArchive: () => Promise<LogHandle | null>,
  ) {}

  get generation(): number {
    return this.stream.generation;
  }

  get seenGeneration(): number | null {
    return this.stream.seenGeneration;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    let mark = this.mark ??= await readChunkMark(this.redis, this.runId);
    let done = 0;
    while (done < length) {
      const at = position + done;
      if (at < mark.chunked) {
        const start = at - (at % mark.chunkBytes);
        const want = Math.min(length - done, start + mark.chunkBytes - at, mark.chunked - at);
        const read = await this.readBelowMark(start, buffer, offset + done, want, at);
        if (read === 0) break;
        done += read;
        continue;
      }
      const { bytesRead } = await this.stream.read(buffer, offset + done, length - done, at);
      if (bytesRead > 0) {
        done += bytesRead;
        continue;
      }
      // The end of the stream, or its entries were trimmed since the mark was read: read it again.
      const again = await readChunkMark(this.redis, this.runId);
      this.mark = again;
      if (again.chunked <= at) break;
      mark = again;
    }
    return { bytesRead: done };
  }

  stat(): Promise<{ size: number; ino: number }> {
    return this.stream.stat();
  }

  async close(): Promise<void> {
    await this.chunk?.handle.close();
    await this.archived?.close();
    await this.stream.close();
  }

  /** From the chunk starting at `start`; from the archive once the chunk is gone (archived, then deleted). */
  private async readBelowMark(start: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (!this.archived && this.chunk?.start !== start) {
      await this.chunk?.handle.close();
      this.chunk = null;
      const handle = await this.objects.open(chunkKey(this.runId, start));
      if (handle) this.chunk = { start, handle };
      else this.archived = await this.openArchive();
    }
    if (this.chunk && !this.archived) return (await this.chunk.handle.read(buffer, offset, length, position - start)).bytesRead;
    return this.archived ? (await this.archived.read(buffer, offset, length, position)).bytesRead : 0;
  }
}
