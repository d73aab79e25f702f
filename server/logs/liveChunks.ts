import fs from 'node:fs/promises';
import type { Redis } from './redisClient.js';
import type { ObjectStore } from './archive.js';
import type { LogHandle } from './logSource.js';
import { defineScript } from './redisScript.js';
import { CHECK_EPOCH, chunksKey, epochKey, fenced, RedisLogSource, type StreamLogHandle, tag } from './redisLogStream.js';

/**
 * A running log's full chunks live in the object store, and its Redis stream keeps only the tail
 * (GitLab's chunked live logs): Redis memory per running run stays under two chunks whatever the
 * log's length. The worker uploads each chunk once the stream holds all of it, then records it and
 * trims the stream below it in one script; readers read below the recorded mark from the chunks
 * and the rest from the stream, at the same offsets. A chunk is the log file's bytes at its
 * offsets, so one uploaded twice, or before a Redis restart, is still right.
 */

/** The default chunk size (`HUB_LOG_CHUNK_BYTES`). */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * The object of the chunk of run `runId` that starts at byte `start`. Run ids are unique in the
 * cluster, so the key needs no project: whoever removes a run's chunks needs only its id.
 */
export const chunkKey = (runId: number, start: number) => `live/${runId}/${start}`;

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

/** Records chunks stored below `chunked` and trims the stream; LeaseLostError under a stale epoch. */
export async function recordChunks(redis: Redis, runId: number, chunked: number, chunkBytes: number, epoch: number): Promise<number> {
  return fenced(runId, Number(await recordScript(redis, [tag(runId), chunksKey(runId), epochKey(runId)], [chunked, chunkBytes, epoch])));
}

export interface ChunkMark {
  /** bytes below this are in chunks, not in the stream */
  chunked: number;
  chunkBytes: number;
}

/** What the run's record says is in chunks (nothing: 0). */
export async function readChunkMark(redis: Redis, runId: number): Promise<ChunkMark> {
  const record = await redis.get(chunksKey(runId));
  const match = record ? /^(\d+),(\d+)$/.exec(record) : null;
  return match ? { chunked: Number(match[1]), chunkBytes: Number(match[2]) } : { chunked: 0, chunkBytes: CHUNK_BYTES };
}

/** Deletes a run's chunk objects below `mark` (once its archive holds the log, or it is purged). */
export async function deleteChunks(objects: ObjectStore, runId: number, mark: ChunkMark): Promise<void> {
  for (let start = 0; start < mark.chunked; start += mark.chunkBytes) await objects.delete(chunkKey(runId, start));
}

/**
 * The worker's side: as the stream grows, uploads each full chunk from the log file, then records
 * it (trimming the stream). One pass at a time; a failure is tried again at the next `advance`.
 */
export class ChunkUploader {
  private uploaded = 0;
  private running: Promise<void> | null = null;
  private again: number | null = null;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly objects: ObjectStore,
    private readonly runId: number,
    private readonly file: string,
    private readonly chunkBytes: number,
    private readonly epoch: number,
  ) {}

  /** Bytes recorded as chunks (the stream no longer holds them). */
  get chunked(): number {
    return this.uploaded;
  }

  /** The stream holds `shipped` bytes: upload the full chunks below it. Rejects with the pass's failure. */
  advance(shipped: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    // A stream lost with Redis (restarted empty) is shipped again from 0 and holds its start again
    // until the next full chunk: its record then covers all below it, whose chunks are stored.
    if (shipped < this.uploaded + this.chunkBytes) return this.running ?? Promise.resolve();
    if (this.running) {
      this.again = Math.max(this.again ?? 0, shipped);
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

  private async upload(shipped: number): Promise<void> {
    const handle = await fs.open(this.file, 'r');
    try {
      const buffer = Buffer.allocUnsafe(this.chunkBytes);
      while (this.uploaded + this.chunkBytes <= shipped && !this.closed) {
        const start = this.uploaded;
        const { bytesRead } = await handle.read(buffer, 0, this.chunkBytes, start);
        if (bytesRead < this.chunkBytes) return; // the file is shorter than the stream says (never: it is the source)
        await this.objects.putBytes(chunkKey(this.runId, start), buffer);
        this.uploaded = start + this.chunkBytes;
        // Recorded after each chunk: a reader finds every byte below the mark in a chunk.
        await recordChunks(this.redis, this.runId, this.uploaded, this.chunkBytes, this.epoch);
      }
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
