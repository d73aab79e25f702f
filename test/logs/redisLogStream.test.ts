import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { LocalLogSource } from '../../server/logs/logSource.js';
import { readLogPage } from '../../server/logs/pageReader.js';
import { LogShipper } from '../../server/logs/logShipper.js';
import { archiveKey, archiveTimesKey, DirectoryObjectStore } from '../../server/logs/archive.js';
import { ClusterLogSource } from '../../server/logs/clusterLogSource.js';
import { appendChunk, closeNotices, deleteStream, fenceStream, RedisLogSource, writeTimes } from '../../server/logs/redisLogStream.js';
import { LeaseLostError } from '../../server/errors.js';
import { LineTimes } from '../../server/logs/lineTimes.js';
import { formatTimeRecord } from '../../pipeline-runner/logClock.js';
import { startRedis } from '../helpers/redis.js';
import { logSourceContract } from './logSource.contract.js';
import { random } from '../helpers/random.js';

const redisServer = await startRedis();
function client(): Redis {
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // while Redis restarts: commands wait and are retried
  return redis;
}
let nextRun = 1;

logSourceContract('redis stream', async () => {
  const redis = client();
  const runId = nextRun++;
  const append = async (bytes: Buffer) => {
    const size = Number((await redis.get(`hub:log:{run:${runId}}:size`)) ?? 0);
    assert.is(await appendChunk(redis, runId, size, bytes), size + bytes.length);
  };
  return {
    source: new RedisLogSource(redis, runId),
    append,
    replace: async (bytes) => {
      await deleteStream(redis, runId);
      await append(bytes);
    },
    done: async () => {
      closeNotices(redis);
      redis.disconnect();
    },
  };
});


test('shipping a log in random chunks (cut inside characters and \\r\\n), every append sent twice, Redis restarted midway: the stream holds the file byte for byte, and pages read from it equal pages read from the file', async () => {
  const next = random(1127);
  const words = ['plain', 'é à ü', '日本語', '😀🚀', '\r\n', '\r', 'x'.repeat(300)];
  let text = '';
  for (let i = 0; i < 3000; i++) text += `line ${i} ${words[Math.floor(next() * words.length)]}\n`;
  const file = Buffer.from(text);
  const runId = nextRun++;
  let redis = client();
  let size = 0;
  let restarted = false;
  while (size < file.length) {
    const length = 1 + Math.floor(next() * 700);
    const chunk = file.subarray(size, size + length);
    const after = await appendChunk(redis, runId, size, chunk);
    assert.is(after, size + chunk.length);
    // The same append again (its reply was lost): nothing is doubled.
    assert.is(await appendChunk(redis, runId, size, chunk), after);
    // A shipper that fell behind cannot skip ahead either.
    if (after < file.length) assert.is(await appendChunk(redis, runId, after + 5, file.subarray(after + 5, after + 10)), after);
    size = after;
    if (!restarted && size > file.length / 2) {
      redis.disconnect();
      await redisServer.restart();
      redis = client();
      restarted = true;
    }
  }
  const source = new RedisLogSource(redis, runId);
  const handle = (await source.open())!;
  assert.is((await handle.stat()).size, file.length);
  const copy = Buffer.alloc(file.length);
  for (let at = 0; at < file.length; ) {
    const { bytesRead } = await handle.read(copy, at, Math.min(100_000, file.length - at), at);
    assert.ok(bytesRead > 0);
    at += bytesRead;
  }
  assert.ok(copy.equals(file), 'the stream holds the file byte for byte');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-ship-'));
  fs.writeFileSync(path.join(dir, 'run.log'), file);
  const local = new LocalLogSource(path.join(dir, 'run.log'));
  const options = { maxLineBytes: 128, finished: true, recordedSize: file.length };
  for (const startAt of [{ tail: 1000 }, { offset: 0 }, { offset: Buffer.byteLength(text.slice(0, text.indexOf('line 1500 '))) }]) {
    assert.equal(await readLogPage(source, options, startAt), await readLogPage(local, options, startAt), JSON.stringify(startAt));
  }
  redis.disconnect();
});

test('a shipper follows a growing log and its times (writes cut anywhere) through a Redis restart: the stream and the times copy end equal to the files', async () => {
  const next = random(42);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-ship-'));
  const file = path.join(dir, 'run.log');
  const times = path.join(dir, 'run.times');
  fs.writeFileSync(file, '');
  const runId = nextRun++;
  const redis = client();
  const shipper = new LogShipper(redis, runId, file, times);
  let written = Buffer.alloc(0);
  for (let i = 0; i < 400; i++) {
    const piece = Buffer.from(`write ${i} ${'é日😀\r'.repeat(Math.floor(next() * 20))}\n`);
    const cut = Math.floor(next() * piece.length);
    fs.appendFileSync(file, piece.subarray(0, cut));
    shipper.ship().catch(() => {}); // a failed ship waits for the next hint, as with the watcher's
    fs.appendFileSync(file, piece.subarray(cut));
    written = Buffer.concat([written, piece]);
    const record = formatTimeRecord(written.length, 1000 + i);
    fs.appendFileSync(times, record.slice(0, 7)); // a record cut in two writes, like any write
    shipper.ship().catch(() => {});
    fs.appendFileSync(times, record.slice(7));
    if (i === 200) await redisServer.restart(); // the client reconnects; appends in flight are retried
    if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.is(await shipper.flush(30_000), written.length);
  const handle = (await new RedisLogSource(redis, runId).open())!;
  const copy = Buffer.alloc(written.length);
  assert.is((await handle.read(copy, 0, written.length, 0)).bytesRead, written.length);
  assert.ok(copy.equals(written), 'the stream equals the file');
  const timesHandle = (await new RedisLogSource(redis, runId).openTimes())!;
  const timesFile = fs.readFileSync(times);
  const timesCopy = Buffer.alloc(timesFile.length);
  assert.is((await timesHandle.stat()).size, timesFile.length);
  assert.is((await timesHandle.read(timesCopy, 0, timesFile.length, 0)).bytesRead, timesFile.length);
  assert.ok(timesCopy.equals(timesFile), 'the times copy equals the times file');
  shipper.close();
  redis.disconnect();
});

test('a finished log is read from the archive once it is there; a stream that expires under a reader is read on from the archive', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-archive-'));
  const archive = new DirectoryObjectStore(path.join(dir, 'archive'));
  const runId = nextRun++;
  const redis = client();
  const file = path.join(dir, 'run.log');
  const text = Buffer.from(Array.from({ length: 500 }, (_, i) => `archived ${i} 日本`).join('\n') + '\n');
  fs.writeFileSync(file, text);
  assert.is(await appendChunk(redis, runId, 0, text), text.length);
  const source = new ClusterLogSource(redis, runId, archive, archiveKey(1, runId));
  const reading = (await source.open())!; // on the stream: not archived yet
  await archive.put(archiveKey(1, runId), file);
  await deleteStream(redis, runId); // what the expiry after archiving does, at once
  const copy = Buffer.alloc(text.length);
  assert.is((await reading.read(copy, 0, text.length, 0)).bytesRead, text.length);
  assert.ok(copy.equals(text), 'read on from the archive');
  assert.is((await reading.stat()).size, text.length);
  const fresh = (await source.open())!;
  assert.is((await fresh.stat()).size, text.length, 'a new reader opens the archive');
  await Promise.all([reading.close(), fresh.close()]);
  redis.disconnect();
});

test("a log's times are read from their Redis copy, then from the archive once the copy expires under a reader", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-archive-times-'));
  const archive = new DirectoryObjectStore(path.join(dir, 'archive'));
  const runId = nextRun++;
  const redis = client();
  const file = path.join(dir, 'run.times');
  const records = Buffer.from(Array.from({ length: 20_000 }, (_, i) => formatTimeRecord((i + 1) * 10, 5000 + i)).join(''));
  fs.writeFileSync(file, records);
  assert.is(await writeTimes(redis, runId, 0, records.subarray(0, 1000)), 1000);
  assert.is(await writeTimes(redis, runId, 1000, records.subarray(1000)), records.length);
  const last = 20_000 * 10;
  const source = new ClusterLogSource(redis, runId, archive, archiveKey(1, runId), archiveTimesKey(1, runId));
  const reading = new LineTimes(() => source.openTimes());
  const ends = [10, 15, last - 10, last, last + 1];
  const expected = [5000, 5001, 24_998, 24_999, 'after'];
  assert.equal(await reading.timesOf(ends, 'after' as never), expected, 'from the Redis copy');
  await archive.put(archiveTimesKey(1, runId), file);
  await deleteStream(redis, runId); // the expiry after archiving, at once
  assert.equal(await reading.timesOf([77_771, 77_780], null), [12_777, 12_777], 'read on from the archive (records it had not read before)');
  const fresh = new LineTimes(() => source.openTimes());
  assert.equal(await fresh.timesOf(ends, null), [...expected.slice(0, -1), null], 'a new reader opens the archive');
  await Promise.all([reading.close(), fresh.close()]);
  assert.equal(await new LineTimes(() => new ClusterLogSource(redis, nextRun++, archive, 'x', 'y').openTimes()).timesOf([1], null), [null], 'no times anywhere: unknown');
  // A copy Redis lost is not written with a gap: the shipper is told to send it from 0.
  const lost = nextRun++;
  assert.is(await writeTimes(redis, lost, 60, records.subarray(60, 90)), 0);
  assert.is(await writeTimes(redis, lost, 0, records.subarray(0, 60)), 60);
  assert.is(await writeTimes(redis, lost, 30, records.subarray(30, 90)), 90, 'a retry over bytes already there');
  redis.disconnect();
});

test('an append or a times write under a stale lease epoch is refused: after a later epoch wrote, or a hub fenced the stream; a shipper under it stops', async () => {
  const redis = client();
  const runId = nextRun++;
  const refused = (promise: Promise<unknown>) => promise.then(() => 'accepted', (error: unknown) => (error instanceof LeaseLostError ? 'refused' : String(error)));
  assert.is(await appendChunk(redis, runId, 0, Buffer.from('one\n'), 1), 4, 'epoch 1 writes');
  assert.is(await appendChunk(redis, runId, 4, Buffer.from('two\n'), 2), 8, 'epoch 2 (a new claim) writes');
  assert.is(await refused(appendChunk(redis, runId, 8, Buffer.from('old\n'), 1)), 'refused', 'epoch 1 after epoch 2');
  assert.is(await refused(writeTimes(redis, runId, 0, Buffer.from('x'), 1)), 'refused', 'times under epoch 1');
  assert.is(await appendChunk(redis, runId, 8, Buffer.from('3\n'), 2), 10, 'epoch 2 goes on');
  // A hub gives the run up under epoch 3: the holder of epoch 2 can add nothing.
  await fenceStream(redis, runId, 3);
  assert.is(await refused(appendChunk(redis, runId, 10, Buffer.from('late\n'), 2)), 'refused', 'epoch 2 after the fence');
  await fenceStream(redis, runId, 2); // a fence never moves back
  assert.is(await refused(appendChunk(redis, runId, 10, Buffer.from('late\n'), 2)), 'refused');
  assert.is(await redis.get(`hub:log:{run:${runId}}:size`), '10', 'the stream is as the last accepted append left it');
  // A shipper under a fenced epoch stops: its ship and flush reject, and it sends nothing more.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-fence-'));
  const file = path.join(dir, 'run.log');
  fs.writeFileSync(file, 'one\ntwo\n3\nmore from a worker that lost the run\n');
  const shipper = new LogShipper(redis, runId, file, undefined, 2);
  assert.is(await refused(shipper.ship()), 'refused');
  assert.is(await refused(shipper.flush(5000)), 'refused');
  assert.is(await redis.get(`hub:log:{run:${runId}}:size`), '10');
  redis.disconnect();
});

test.after(() => redisServer.stop());

test.run();
