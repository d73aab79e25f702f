import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { LogShipper } from '../../server/logs/logShipper.js';
import { appendChunk, closeNotices, deleteStream, RedisLogSource } from '../../server/logs/redisLogStream.js';
import { streamReadCounters } from '../../server/logs/streamRead.js';
import { withTimeout } from '../../server/retry.js';
import { formatTimeRecord } from '../../pipeline-runner/logClock.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCommandCounter } from '../helpers/redisCommandCounter.js';
import { waitFor } from '../helpers/hub.js';
import { random } from '../helpers/random.js';
import { logSourceContract } from './logSource.contract.js';

const redisServer = await startRedis();
const counter = await startRedisCommandCounter(redisServer.url);
function client(url = redisServer.url): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, commandTimeout: 5000 });
  redis.on('error', () => {});
  return redis;
}
let nextRun = 90_000;

function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `hub-batch-${name}-`));
}

/** A test body with a deadline: a Redis that stops answering fails the test instead of hanging it. */
const within = (ms: number, body: () => Promise<void>) => () => withTimeout(body(), ms, 'the test');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The p-th percentile of `values` (0 < p ≤ 100). */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/**
 * `runs` runs write `rate` lines a second each (a time record with every line, a hint per write: the
 * worst a watcher does) for `seconds`, shipped by batching shippers on one client through the command
 * counter; a reader follows each stream on its own client. Returns the commands sent per run-second and
 * each line's latency from its write to its reader.
 */
async function measure(runs: number, rate: number, seconds: number) {
  const shipping = client(counter.url);
  const reading = client();
  await Promise.all([shipping.ping(), reading.ping()]);
  const dir = tempDir(`rate-${rate}`);
  const latencies: number[] = [];
  const writtenAt = new Map<string, number>();
  const members = Array.from({ length: runs }, () => {
    const runId = nextRun++;
    const file = path.join(dir, `${runId}.log`);
    const times = path.join(dir, `${runId}.times`);
    fs.writeFileSync(file, '');
    fs.writeFileSync(times, '');
    return { runId, file, times, size: 0, written: 0, shipper: new LogShipper(shipping, runId, file, times, 0) };
  });
  // Readers: on each notice, the new bytes; each whole line's latency from its write.
  const followers = members.map(({ runId }) => {
    const source = new RedisLogSource(reading, runId);
    let at = 0;
    let tail = '';
    let busy: Promise<void> | null = null;
    let again = false;
    const follow = async () => {
      const handle = await source.open();
      if (!handle) return;
      const { size } = await handle.stat();
      if (size <= at) return;
      const buffer = Buffer.alloc(size - at);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
      at += bytesRead;
      const now = Date.now();
      const lines = (tail + buffer.toString('utf8', 0, bytesRead)).split('\n');
      tail = lines.pop()!;
      for (const line of lines) {
        const sent = writtenAt.get(line.slice(0, line.indexOf(' ', 5)));
        if (sent !== undefined) latencies.push(now - sent);
      }
    };
    // A notice while reading reads again after (it may be for bytes past the read).
    const hint = () => {
      if (busy) {
        again = true;
        return;
      }
      busy = follow().catch(() => {}).finally(() => {
        busy = null;
        if (again) {
          again = false;
          hint();
        }
      });
    };
    return { stop: source.watch(hint), done: () => at };
  });
  await sleep(200); // the readers' subscriptions are in place
  const before = counter.total();
  const started = Date.now();
  const padding = 'x'.repeat(60);
  while (Date.now() - started < seconds * 1000) {
    const due = Math.floor(((Date.now() - started) * rate) / 1000);
    for (const member of members) {
      for (; member.written < due; member.written++) {
        const key = `line ${member.runId}:${member.written}`;
        const line = `${key} ${padding}\n`;
        fs.appendFileSync(member.file, line);
        member.size += Buffer.byteLength(line);
        writtenAt.set(key, Date.now());
        fs.appendFileSync(member.times, formatTimeRecord(member.size, Date.now()));
        member.shipper.ship().catch(() => {});
      }
    }
    await sleep(5);
  }
  const elapsed = (Date.now() - started) / 1000;
  await waitFor(() => followers.every((follower, index) => follower.done() === members[index].size), 'the readers to have every line', 10_000);
  const commands = counter.total() - before;
  for (const { stop } of followers) stop();
  for (const { shipper } of members) shipper.close();
  closeNotices(reading);
  shipping.disconnect();
  reading.disconnect();
  const lines = members.reduce((sum, member) => sum + member.written, 0);
  assert.is(latencies.length, lines, 'every line was read');
  return { perRunSecond: commands / (runs * elapsed), p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) };
}

for (const [runs, rate] of [[4, 100], [2, 1000]] as const) {
  test(`${runs} runs at ${rate} lines a second each (a hint per line) cost at most 20 Redis commands per run-second; lines reach a reader within the interval and a little`, within(40_000, async () => {
    const result = await measure(runs, rate, 4);
    console.log(`    ${rate} lines/s: ${result.perRunSecond.toFixed(1)} commands per run-second, line latency p50 ${result.p50} ms, p99 ${result.p99} ms, max ${result.max} ms`);
    assert.ok(result.perRunSecond <= 15, `${result.perRunSecond.toFixed(1)} commands per run-second (target 20, asserted with margin at 15)`);
    assert.ok(result.p99 < 1000, `p99 line latency ${result.p99} ms`);
  }));
}

test('a final flush ships at once, whatever the interval; hints inside the interval wait for it, unless a full call waits', within(30_000, async () => {
  const dir = tempDir('flush');
  const file = path.join(dir, 'run.log');
  fs.writeFileSync(file, 'first\n');
  const redis = client();
  const runId = nextRun++;
  const shipper = new LogShipper(redis, runId, file, undefined, 0, { intervalMs: 60_000 });
  await shipper.ship(); // the first hint ships at once: nothing went out in the last interval
  assert.is(shipper.size, 6);
  fs.appendFileSync(file, 'second\n');
  let hinted = false;
  shipper.ship().then(() => (hinted = true), () => {});
  await sleep(300);
  assert.is(hinted, false, 'a hint inside the interval waits for its end');
  assert.is(Number(await redis.get(`hub:log:{run:${runId}}:size`)), 6);
  const started = Date.now();
  assert.is(await shipper.flush(10_000), 13);
  assert.ok(Date.now() - started < 1000, `the flush took ${Date.now() - started} ms`);
  await waitFor(() => hinted, 'the waiting hint to be settled by the flush', 2000);
  // A full call's worth waiting goes before the interval is up.
  fs.appendFileSync(file, 'y'.repeat(300 * 1024));
  shipper.ship().catch(() => {});
  await waitFor(async () => Number(await redis.get(`hub:log:{run:${runId}}:size`)) >= 256 * 1024, 'a full call to ship early', 5000);
  shipper.close();
  assert.is(await shipper.ship().then(() => 'settled'), 'settled', 'a closed shipper ships nothing and holds no one up');
  redis.disconnect();
}));

test('a ship that waits for the runner\'s time sample carries the lines that sample saw, not only those there when it started', within(30_000, async () => {
  const dir = tempDir('sampled');
  const file = path.join(dir, 'run.log');
  const times = path.join(dir, 'run.times');
  fs.writeFileSync(file, 'first\n');
  fs.writeFileSync(times, formatTimeRecord(0, Date.now())); // the runner's first sample, at its start
  const redis = client();
  const runId = nextRun++;
  const shipper = new LogShipper(redis, runId, file, times, 0, { timesWaitMs: 10_000 });
  const shipped = shipper.ship();
  // The ship has read the log's size (6) and waits for a record covering it; meanwhile a line comes,
  // then the sample that sees both. (Were the ship slower to look than this, it would see both anyway.)
  await sleep(300);
  fs.appendFileSync(file, 'second\n');
  await sleep(100);
  fs.appendFileSync(times, formatTimeRecord(13, Date.now()));
  await shipped;
  assert.is(shipper.size, 13, 'both lines in the ship that waited');
  assert.is(await redis.xlen(`hub:log:{run:${runId}}`), 1, 'in one call');
  shipper.close();
  redis.disconnect();
}));

test('with the runner\'s time samples, a ship starts waiting for its sample before its interval is up: it carries a line an interval after the last ship, not an interval and a sample wait after', within(30_000, async () => {
  const dir = tempDir('lead');
  const file = path.join(dir, 'run.log');
  const times = path.join(dir, 'run.times');
  fs.writeFileSync(file, 'first\n');
  fs.writeFileSync(times, formatTimeRecord(6, Date.now()));
  const redis = client();
  const runId = nextRun++;
  // An interval of 3 s, of which the last 2 s are spent waiting for the sample.
  const shipper = new LogShipper(redis, runId, file, times, 0, { intervalMs: 3000, timesLeadMs: 2000, timesWaitMs: 10_000 });
  await shipper.ship(); // at once: nothing went out before; its sample is there, so its cut is now
  const cut = Date.now();
  fs.appendFileSync(file, 'second\n');
  shipper.ship().catch(() => {});
  await sleep(1300); // the next ship has been waiting for a sample covering the line since cut + 1 s
  fs.appendFileSync(times, formatTimeRecord(13, Date.now()));
  await waitFor(() => shipper.size === 13, 'the line to ship', 10_000);
  // Without the lead the next ship could not start before cut + 3 s.
  assert.ok(Date.now() - cut < 2900, `shipped ${Date.now() - cut} ms after the last cut`);
  // And not before its sample: it waited for the line's time.
  assert.is(await redis.xlen(`hub:log:{run:${runId}}`), 2, 'one call per ship');
  shipper.close();
  redis.disconnect();
}));

test('reads fetch only the bytes asked for: random reads equal the file, and bytes read from Redis stay within 1.1 × the bytes served', within(30_000, async () => {
  const next = random(2323);
  const words = ['plain', 'é à ü', '日本語', '😀🚀', '\r\n', 'x'.repeat(500)];
  let text = '';
  for (let i = 0; text.length < 2_000_000; i++) text += `line ${i} ${words[Math.floor(next() * words.length)]}\n`;
  const file = Buffer.from(text);
  const redis = client();
  const runId = nextRun++;
  // Entries of every size, from a byte to 128 KiB.
  for (let at = 0; at < file.length; ) {
    const length = next() < 0.5 ? 1 + Math.floor(next() * 200) : 1 + Math.floor(next() * 128 * 1024);
    at = await appendChunk(redis, runId, at, file.subarray(at, at + length));
  }
  const handle = (await new RedisLogSource(redis, runId).open())!;
  const before = streamReadCounters.bytesRead;
  let served = 0;
  for (let i = 0; i < 400; i++) {
    const position = Math.floor(next() * file.length);
    const length = Math.min(file.length - position, next() < 0.5 ? 1 + Math.floor(next() * 100) : 1 + Math.floor(next() * 3_000_000));
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    assert.is(bytesRead, length, `a read of [${position}, ${position + length}) is whole`);
    assert.ok(buffer.equals(file.subarray(position, position + length)), `bytes [${position}, ${position + length}) equal the file`);
    served += bytesRead;
  }
  const fetched = streamReadCounters.bytesRead - before;
  console.log(`    exact reads: ${fetched} bytes read from Redis for ${served} served (${(fetched / served).toFixed(3)}×)`);
  assert.ok(fetched <= 1.1 * served, `${fetched} bytes read for ${served} served`);
  // A gap (entries gone under the reader, as a trim does) ends a read short at the gap.
  const [, second] = await redis.xrange(`hub:log:{run:${runId}}`, '-', '+', 'COUNT', 2);
  const gapAt = Number(second[0].split('-')[0]);
  await redis.xdel(`hub:log:{run:${runId}}`, second[0]);
  const buffer = Buffer.alloc(gapAt + 10);
  assert.is((await handle.read(buffer, 0, gapAt + 10, 0)).bytesRead, gapAt, 'short at the gap');
  assert.is((await handle.read(buffer, 0, 10, gapAt)).bytesRead, 0, 'nothing at the gap itself');
  redis.disconnect();
}));

// The contract every log source keeps, on a stream fed by a batching shipper.
logSourceContract('redis stream fed by a batching shipper', async () => {
  const dir = tempDir('contract');
  const file = path.join(dir, 'run.log');
  const redis = client();
  const runId = nextRun++;
  let shipper = new LogShipper(redis, runId, file);
  return {
    source: new RedisLogSource(redis, runId),
    append: async (bytes) => {
      fs.appendFileSync(file, bytes);
      await withTimeout(shipper.ship(), 5000, 'a ship');
    },
    replace: async (bytes) => {
      shipper.close();
      await deleteStream(redis, runId);
      fs.writeFileSync(file, bytes);
      shipper = new LogShipper(redis, runId, file);
      await withTimeout(shipper.ship(), 5000, 'a ship');
    },
    done: async () => {
      shipper.close();
      closeNotices(redis);
      redis.disconnect();
    },
  };
});

test.after(async () => {
  await counter.close();
  await redisServer.stop();
});

test.run();
