import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { archiveKey, DirectoryObjectStore } from '../../server/logs/archive.js';
import { ClusterLogSource } from '../../server/logs/clusterLogSource.js';
import { ChunkUploader, chunkKey, deleteChunks, readChunkMark, timesChunkBytes, timesChunkKey } from '../../server/logs/liveChunks.js';
import { LogShipper } from '../../server/logs/logShipper.js';
import { appendChunk, closeNotices, deleteStream, expireStream } from '../../server/logs/redisLogStream.js';
import { LeaseLostError } from '../../server/errors.js';
import { formatTimeRecord } from '../../pipeline-runner/logClock.js';
import { random } from '../helpers/random.js';
import { startRedis } from '../helpers/redis.js';
import { logSourceContract } from './logSource.contract.js';

const redisServer = await startRedis();
function client(): Redis {
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  redis.on('error', () => {});
  return redis;
}
// Far from the ids of other test files' runs: the object store here is this file's own anyway.
let nextRun = 70_000;

function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `hub-chunks-${name}-`));
}

/** A run of its own: its log file (holding `content`), an object store, a Redis client and a reader of the log. */
function chunkedRun(name: string, content = '') {
  const dir = tempDir(name);
  const objects = new DirectoryObjectStore(path.join(dir, 'objects'));
  const file = path.join(dir, 'run.log');
  fs.writeFileSync(file, content);
  const runId = nextRun++;
  const redis = client();
  return { objects, file, runId, redis, source: new ClusterLogSource(redis, runId, objects, archiveKey(1, runId)) };
}

/** Reads [position, position + length) through a fresh handle of `source`. */
async function readRange(source: ClusterLogSource, position: number, length: number): Promise<Buffer> {
  const handle = (await source.open())!;
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

// The contract every log source keeps, on a stream whose start moves to 16-byte chunks as it grows.
logSourceContract('redis stream with live chunks', async () => {
  const { objects, file, runId, redis, source } = chunkedRun('contract');
  fs.rmSync(file); // the contract's log does not exist yet
  let uploader = new ChunkUploader(redis, objects, runId, file, 16, 0);
  const append = async (bytes: Buffer) => {
    fs.appendFileSync(file, bytes);
    const size = Number((await redis.get(`hub:log:{run:${runId}}:size`)) ?? 0);
    assert.is(await appendChunk(redis, runId, size, bytes), size + bytes.length);
    await uploader.advance({ log: size + bytes.length, times: 0 });
  };
  return {
    source,
    append,
    replace: async (bytes) => {
      await uploader.close();
      await deleteStream(redis, runId);
      fs.writeFileSync(file, '');
      uploader = new ChunkUploader(redis, objects, runId, file, 16, 0);
      await append(bytes);
    },
    done: async () => {
      await uploader.close();
      closeNotices(redis);
      redis.disconnect();
    },
  };
});

test('a long running log keeps at most two chunks in Redis however long it grows, and reads at any offset (across chunk and stream) equal the file, while it grows', async () => {
  const chunkBytes = 64 * 1024;
  const { objects, file, runId, redis, source } = chunkedRun('bound');
  // A ship per hint (no interval): each awaited ship covers the line just written.
  const shipper = new LogShipper(redis, runId, file, undefined, 0, { intervalMs: 0 });
  const uploader = new ChunkUploader(redis, objects, runId, file, chunkBytes, 0);
  const next = random(2318);
  let written = 0;
  let largest = 0;
  // 40 chunks' worth, written in random pieces; a reader reads random ranges as it grows.
  while (written < 40 * chunkBytes) {
    const piece = Buffer.from(`line ${written} ${'é日😀 x'.repeat(Math.floor(next() * 400))}\n`);
    fs.appendFileSync(file, piece);
    written += piece.length;
    await shipper.ship();
    await uploader.advance({ log: shipper.size, times: 0 });
    largest = Math.max(largest, Number(await redis.memory('USAGE', `hub:log:{run:${runId}}`, 'SAMPLES', 0)));
    const position = Math.floor(next() * written);
    const length = Math.min(written - position, Math.floor(next() * 3 * chunkBytes));
    const expected = fs.readFileSync(file).subarray(position, position + length);
    assert.ok((await readRange(source, position, length)).equals(expected), `bytes [${position}, ${position + length}) equal the file`);
  }
  const mark = await readChunkMark(redis, runId);
  assert.ok(mark.chunked >= written - 2 * chunkBytes, `all but the tail is in chunks (${mark.chunked} of ${written})`);
  // The stream's memory: its entries (Redis's own overhead on top) stay under two chunks and a bit.
  assert.ok(largest < 2.5 * chunkBytes, `the stream held at most ${largest} bytes, for a log of ${written}`);
  assert.ok((await readRange(source, 0, written)).equals(fs.readFileSync(file)), 'the whole log reads back');
  shipper.close();
  await uploader.close();
  redis.disconnect();
});

test('readers racing the trim of the chunks they read read exact bytes: many readers while the log grows and moves to chunks', async () => {
  const chunkBytes = 4096;
  const { objects, file, runId, redis, source } = chunkedRun('race');
  // A ship per hint (no interval): each awaited ship covers the line just written.
  const shipper = new LogShipper(redis, runId, file, undefined, 0, { intervalMs: 0 });
  const uploader = new ChunkUploader(redis, objects, runId, file, chunkBytes, 0);
  let done = false;
  const writing = (async () => {
    for (let i = 0; i < 3000; i++) {
      fs.appendFileSync(file, `racing line ${i} ${'ab'.repeat(i % 37)}\n`);
      await shipper.ship();
      uploader.advance({ log: shipper.size, times: 0 }).catch(() => {});
    }
    done = true;
  })();
  const next = random(77);
  let reads = 0;
  const reader = async () => {
    while (!done) {
      const size = shipper.size;
      if (size === 0) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const position = Math.floor(next() * size);
      const length = Math.min(size - position, 1 + Math.floor(next() * 3 * chunkBytes));
      const got = await readRange(source, position, length);
      assert.ok(got.equals(fs.readFileSync(file).subarray(position, position + length)), `bytes [${position}, ${position + length}) equal the file`);
      reads++;
    }
  };
  await Promise.all([writing, reader(), reader(), reader()]);
  assert.ok(reads > 50, `${reads} reads raced the trims`);
  assert.ok((await readChunkMark(redis, runId)).chunked > 20 * chunkBytes, 'most of the log moved to chunks meanwhile');
  shipper.close();
  await uploader.close();
  redis.disconnect();
});

test('once the log is archived and its chunks deleted, a reader that had it open reads on from the archive; the chunks are gone', async () => {
  const chunkBytes = 4096;
  const { objects, file, runId, redis, source } = chunkedRun('archived', Array.from({ length: 2000 }, (_, i) => `archived chunk line ${i}\n`).join(''));
  const log = fs.readFileSync(file);
  const shipper = new LogShipper(redis, runId, file);
  await shipper.flush(10_000);
  const uploader = new ChunkUploader(redis, objects, runId, file, chunkBytes, 0);
  await uploader.advance({ log: shipper.size, times: 0 });
  await uploader.close();
  const reading = (await source.open())!;
  const first = Buffer.alloc(100);
  await reading.read(first, 0, 100, 0); // from the first chunk
  assert.ok(first.equals(log.subarray(0, 100)));
  // What the worker does at the end: archive, let the stream expire, delete the chunks.
  await objects.put(archiveKey(1, runId), file);
  const mark = await readChunkMark(redis, runId);
  assert.ok(mark.chunked > 0);
  await expireStream(redis, runId);
  await deleteChunks(objects, runId, mark);
  assert.is(await objects.open(chunkKey(runId, 0)), null, 'the chunks are deleted');
  const copy = Buffer.alloc(log.length);
  assert.is((await reading.read(copy, 0, log.length, 0)).bytesRead, log.length);
  assert.ok(copy.equals(log), 'read on from the archive');
  await reading.close();
  shipper.close();
  redis.disconnect();
});

test('a chunk recorded under a stale lease epoch is refused; a stream lost with Redis (restarted empty) is recorded again from its next chunk on', async () => {
  const chunkBytes = 4096;
  const { objects, file, runId, redis, source } = chunkedRun('fence', 'x'.repeat(3 * chunkBytes));
  const shipper = new LogShipper(redis, runId, file, undefined, 2);
  await shipper.flush(10_000);
  const stale = new ChunkUploader(redis, objects, runId, file, chunkBytes, 1);
  const refused = await stale.advance({ log: shipper.size, times: 0 }).then(() => null, (error: unknown) => error);
  assert.ok(refused instanceof LeaseLostError, 'the stale epoch is refused');
  const current = new ChunkUploader(redis, objects, runId, file, chunkBytes, 2);
  await current.advance({ log: shipper.size, times: 0 });
  assert.is((await readChunkMark(redis, runId)).chunked, 3 * chunkBytes);
  await deleteStream(redis, runId); // Redis lost it: the shipper sends it again from 0
  const again = new LogShipper(redis, runId, file, undefined, 2);
  await again.flush(10_000);
  await current.advance({ log: again.size, times: 0 });
  assert.ok((await readRange(source, 0, 3 * chunkBytes)).equals(fs.readFileSync(file)), 'read whole from the stream meanwhile');
  fs.appendFileSync(file, 'y'.repeat(chunkBytes + 10));
  await again.flush(10_000);
  await current.advance({ log: again.size, times: 0 });
  assert.is((await readChunkMark(redis, runId)).chunked, 4 * chunkBytes, 'the next chunk records all below it again');
  assert.is(Number(await redis.xlen(`hub:log:{run:${runId}}`)), 1, 'the stream keeps only its tail');
  assert.ok((await readRange(source, 0, 4 * chunkBytes + 10)).equals(fs.readFileSync(file)));
  shipper.close();
  again.close();
  await Promise.all([stale.close(), current.close()]);
  redis.disconnect();
});

test('a long run\'s times go to chunks too: Redis keeps under two times chunks, reads at any offset equal the times file while it grows and after the archive; a stale epoch cannot cut them', async () => {
  const chunkBytes = 4096;
  const timesChunk = timesChunkBytes(chunkBytes); // 17 records of 30 bytes
  const { objects, file, runId, redis } = chunkedRun('times');
  const timesFile = file.replace(/\.log$/, '.times');
  fs.writeFileSync(timesFile, '');
  const source = new ClusterLogSource(redis, runId, objects, archiveKey(1, runId), `${archiveKey(1, runId)}.times`);
  const shipper = new LogShipper(redis, runId, file, timesFile, 3, { intervalMs: 0, timesWaitMs: 0 });
  const uploader = new ChunkUploader(redis, objects, runId, file, chunkBytes, 3, timesFile);
  const next = random(2319);
  const readTimes = async (position: number, length: number) => {
    const handle = (await source.openTimes())!;
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      return { bytes: buffer.subarray(0, bytesRead), size: (await handle.stat()).size };
    } finally {
      await handle.close();
    }
  };
  let largest = 0;
  for (let i = 0; i < 600; i++) {
    fs.appendFileSync(file, `timed line ${i}\n`);
    fs.appendFileSync(timesFile, formatTimeRecord(fs.statSync(file).size, 1_700_000_000_000 + i));
    await shipper.ship();
    await uploader.advance({ log: shipper.size, times: shipper.timesSize });
    largest = Math.max(largest, Number(await redis.strlen(`hub:log:{run:${runId}}:times`)));
    const times = fs.readFileSync(timesFile);
    const position = Math.floor(next() * times.length);
    const length = Math.min(times.length - position, 1 + Math.floor(next() * 3 * timesChunk));
    const read = await readTimes(position, length);
    assert.ok(read.bytes.equals(times.subarray(position, position + length)), `times [${position}, ${position + length}) equal the file`);
    assert.is(read.size, times.length, 'its size is the file\'s');
  }
  const times = fs.readFileSync(timesFile);
  const mark = await readChunkMark(redis, runId);
  assert.ok(mark.timesChunked >= times.length - 2 * timesChunk, `all but the tail of the times is in chunks (${mark.timesChunked} of ${times.length})`);
  assert.ok(largest < 2 * timesChunk, `Redis held at most ${largest} bytes of times, for ${times.length}`);
  console.log(`    times: Redis held at most ${largest} bytes of ${times.length} (chunks of ${timesChunk})`);
  assert.ok((await readTimes(0, times.length)).bytes.equals(times), 'the whole times file reads back');
  const stale = new ChunkUploader(redis, objects, runId, file, chunkBytes, 2, timesFile);
  fs.appendFileSync(timesFile, formatTimeRecord(fs.statSync(file).size, 1_700_000_001_000).repeat(2 * timesChunk / 30));
  await shipper.flush(10_000);
  const refused = await stale.advance({ log: 0, times: shipper.timesSize }).then(() => null, (error: unknown) => error);
  assert.ok(refused instanceof LeaseLostError, 'a stale epoch cannot record times chunks');
  // The end: archived, the copy set to expire, the chunks deleted; a reader that had it open reads on from the archive.
  await uploader.close();
  const reading = (await source.openTimes())!;
  await objects.put(`${archiveKey(1, runId)}.times`, timesFile);
  await expireStream(redis, runId);
  await deleteChunks(objects, runId, await readChunkMark(redis, runId));
  assert.is(await objects.open(timesChunkKey(runId, 0)), null, 'the times chunks are deleted');
  const all = fs.readFileSync(timesFile);
  const copy = Buffer.alloc(all.length);
  assert.is((await reading.read(copy, 0, all.length, 0)).bytesRead, all.length);
  assert.ok(copy.equals(all), 'read on from the archive below the copy, from Redis above');
  await reading.close();
  shipper.close();
  await stale.close();
  redis.disconnect();
});

test.after(() => redisServer.stop());

test.run();
