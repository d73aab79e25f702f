/**
 * `npm run bench -- --redis`: what the log path costs Redis, each figure beside its unbatched or
 * unsliced baseline measured in the same run. Commands are counted on the wire (a proxy that parses
 * the requests), so a script's inner calls are not counted as commands sent; Redis's own count
 * (which includes them) is given beside it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { LogShipper, type ShipperOptions } from '../server/logs/logShipper.js';
import { LogClock } from '../pipeline-runner/logClock.js';
import { appendChunk } from '../server/logs/redisLogStream.js';
import { streamReadCounters } from '../server/logs/streamRead.js';
import { startRedis } from '../test/helpers/redis.js';
import { startRedisCommandCounter } from '../test/helpers/redisCommandCounter.js';
import { Histogram } from './histogram.js';
import type { Result } from './scenarios.js';

const LINE = `${'x'.repeat(59)}\n`; // 60 bytes, a typical build log line

interface ShipCost {
  commandsPerRunSecond: number;
  /** Redis's own count, script-inner calls included */
  redisCommandsPerRunSecond: number;
  p50: number;
  p99: number;
}

/**
 * `runs` logs growing by `rate` lines a second each, a hint per line (a watcher's worst), for `seconds`;
 * latency: write to shipped. `sampled`: with the runner's time sampler on each log (its records every
 * 25 ms, which a ship waits for), as on a worker.
 */
async function shipCost(url: string, runs: number, rate: number, seconds: number, firstId: number, options: ShipperOptions & { sampled?: boolean } = {}): Promise<ShipCost> {
  const direct = new Redis(url, { maxRetriesPerRequest: 2, commandTimeout: 10_000 });
  const counter = await startRedisCommandCounter(url); // a fresh count for this load alone
  const shipping = new Redis(counter.url, { maxRetriesPerRequest: 2, commandTimeout: 10_000 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-redis-cost-'));
  try {
    await shipping.ping();
    const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await direct.info('stats'))![1]);
    const files = Array.from({ length: runs }, (_, i) => path.join(dir, `${firstId + i}.log`));
    for (const file of files) fs.writeFileSync(file, '');
    const timesOf = (file: string) => (options.sampled ? file.replace(/\.log$/, '.times') : undefined);
    const logFds = options.sampled ? files.map((file) => fs.openSync(file, 'r')) : [];
    const clocks = logFds.map((fd, i) => new LogClock(fd, timesOf(files[i])!));
    for (const clock of clocks) clock.start();
    const shippers = files.map((file, i) => new LogShipper(shipping, firstId + i, file, timesOf(file), 0, options));
    const histogram = new Histogram();
    const sentBefore = counter.total();
    const processedBefore = await processed();
    const started = performance.now();
    const written = files.map(() => 0);
    // Each line's latency: from its write to the end of the first ship after which the stream holds it
    // (a ship may carry lines hinted after it started: those its awaited time sample saw).
    const unshipped = files.map(() => [] as { at: number; end: number }[]);
    const arrived = (i: number) => {
      const now = performance.now();
      const lines = unshipped[i];
      let count = 0;
      while (count < lines.length && lines[count].end <= shippers[i].size) histogram.add(now - lines[count++].at);
      lines.splice(0, count);
    };
    const pending: Promise<void>[] = [];
    while (performance.now() - started < seconds * 1000) {
      const due = Math.floor(((performance.now() - started) * rate) / 1000);
      for (const [i, file] of files.entries()) {
        for (; written[i] < due; written[i]++) {
          fs.appendFileSync(file, LINE);
          unshipped[i].push({ at: performance.now(), end: (written[i] + 1) * LINE.length });
          pending.push(shippers[i].ship().then(() => arrived(i)));
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - started) / 1000;
    const sent = counter.total() - sentBefore;
    const inRedis = (await processed()) - processedBefore - 1; // less the INFO that asked
    for (const shipper of shippers) shipper.close();
    for (const clock of clocks) clock.stop();
    for (const fd of logFds) fs.closeSync(fd);
    const { p50, p99 } = histogram.summary();
    return { commandsPerRunSecond: sent / runs / elapsed, redisCommandsPerRunSecond: inRedis / runs / elapsed, p50, p99 };
  } finally {
    shipping.disconnect();
    direct.disconnect();
    await counter.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const describeCost = (cost: ShipCost) => `${cost.commandsPerRunSecond.toFixed(1)} commands/run-s sent (${cost.redisCommandsPerRunSecond.toFixed(1)} run in Redis, script calls included); write→shipped p50 ${cost.p50.toFixed(1)} / p99 ${cost.p99.toFixed(1)} ms`;

/** A row of two shipping costs, the shipper as built beside a baseline measured in the same run. */
function shipRow(scenario: string, ours: { label: string; cost: ShipCost }, baseline: { label: string; cost: ShipCost }, ratio: number): Result {
  return {
    scenario,
    hub: `${ours.label}${describeCost(ours.cost)}`,
    baseline: `${baseline.label}${describeCost(baseline.cost)}`,
    ratio,
    target: '≤ 20 commands/run-s, p99 ≤ 120 ms',
    met: ours.cost.commandsPerRunSecond <= 20 && ours.cost.p99 <= 120,
    lost: 0,
    duplicated: 0,
    data: { ours: ours.cost, baseline: baseline.cost },
  };
}

/** Commands per running run per second at each line rate: batched (one call per interval) against a ship per hint. */
export async function shipCommands(runs: number, rates: number[], seconds: number): Promise<Result[]> {
  const server = await startRedis();
  const rows: Result[] = [];
  let firstId = 1;
  try {
    for (const rate of rates) {
      const batched = await shipCost(server.url, runs, rate, seconds, firstId);
      firstId += runs;
      const unbatched = await shipCost(server.url, runs, rate, seconds, firstId, { intervalMs: 0 });
      firstId += runs;
      rows.push(shipRow(`redis: commands per run-second, ${runs} runs × ${rate} lines/s (a hint per line)`, { label: '', cost: batched }, { label: 'a ship per hint: ', cost: unbatched }, batched.commandsPerRunSecond / unbatched.commandsPerRunSecond));
    }
    // The same with the runner's time samples (every 25 ms), which a ship waits for: carrying the
    // lines the awaited sample saw, or only those there when the ship started.
    const rate = rates[0];
    const taking = await shipCost(server.url, runs, rate, seconds, firstId, { sampled: true });
    firstId += runs;
    const atStart = await shipCost(server.url, runs, rate, seconds, firstId, { sampled: true, takeSampledLines: false });
    firstId += runs;
    rows.push(shipRow(`redis: write→shipped with the runner's 25 ms time samples, ${runs} runs × ${rate} lines/s`, { label: 'a ship carries the lines its awaited sample saw: ', cost: taking }, { label: 'only the lines there at its start: ', cost: atStart }, taking.p99 / atStart.p99));
    // And a ship that starts its wait for the sample at its interval, not a sample period before it.
    const noLead = await shipCost(server.url, runs, rate, seconds, firstId, { sampled: true, timesLeadMs: 0 });
    firstId += runs;
    rows.push(shipRow(`redis: write→shipped, a ship's sample wait started a sample period early, ${runs} runs × ${rate} lines/s`, { label: 'waits from 25 ms before its interval: ', cost: taking }, { label: 'waits from its interval: ', cost: noLead }, taking.p99 / noLead.p99));
    return rows;
  } finally {
    await server.stop();
  }
}

/**
 * The reader before exact reads, kept as the baseline: the entry holding the position, then
 * XRANGE … COUNT 256 from there, the entries' bytes all fetched; returns the bytes fetched.
 */
async function readWholeEntries(redis: Redis, key: string, length: number, position: number): Promise<{ fetched: number; served: number }> {
  const [first] = await redis.xrevrangeBuffer(key, `${position}-1`, '-', 'COUNT', 1);
  if (!first) return { fetched: 0, served: 0 };
  let from = first[0].toString();
  let fetched = 0;
  let served = 0;
  while (served < length) {
    const entries = await redis.xrangeBuffer(key, from, '+', 'COUNT', 256);
    for (const [id, fields] of entries) {
      const start = Number(id.toString().split('-')[0]);
      fetched += fields[1].length;
      const skip = position + served - start;
      if (skip < 0) return { fetched, served };
      if (skip >= fields[1].length || served >= length) continue;
      served += Math.min(fields[1].length - skip, length - served);
    }
    if (entries.length < 256) break;
    from = `(${entries[entries.length - 1][0].toString()}`;
  }
  return { fetched, served };
}

/** Bytes fetched from Redis per byte served, for random page reads and a catch-up, exact against whole entries. */
export async function readAmplification(logBytes: number): Promise<Result[]> {
  const server = await startRedis();
  const redis = new Redis(server.url, { maxRetriesPerRequest: 2, commandTimeout: 10_000 });
  try {
    const { RedisLogSource } = await import('../server/logs/redisLogStream.js');
    const runId = 1;
    const key = `hub:log:{run:${runId}}`;
    // Entries as a shipper makes them: mostly an interval's lines (a few KiB), some full calls (256 KiB).
    let seed = 7;
    const next = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (let at = 0; at < logBytes; ) {
      const length = next() < 0.9 ? 600 + Math.floor(next() * 6000) : 256 * 1024;
      at = await appendChunk(redis, runId, at, Buffer.from(LINE.repeat(Math.ceil(length / LINE.length))));
    }
    const size = Number(await redis.get(`${key}:size`));
    const handle = (await new RedisLogSource(redis, runId).open())!;
    const rows: Result[] = [];
    for (const [name, reads] of [
      ['random 64 KiB page reads', Array.from({ length: 200 }, () => ({ position: Math.floor(next() * (size - 65_536)), length: 65_536 }))],
      ['catch-up from 0 in 1 MiB reads', Array.from({ length: Math.ceil(size / 2 ** 20) }, (_, i) => ({ position: i * 2 ** 20, length: Math.min(2 ** 20, size - i * 2 ** 20) }))],
    ] as const) {
      const before = streamReadCounters.bytesRead;
      let served = 0;
      let baselineFetched = 0;
      let baselineServed = 0;
      const buffer = Buffer.alloc(2 ** 20);
      for (const { position, length } of reads) {
        served += (await handle.read(buffer, 0, length, position)).bytesRead;
        const whole = await readWholeEntries(redis, key, length, position);
        baselineFetched += whole.fetched;
        baselineServed += whole.served;
      }
      const exact = (streamReadCounters.bytesRead - before) / served;
      const baseline = baselineFetched / baselineServed;
      rows.push({
        scenario: `redis: read amplification, ${name} of a ${(size / 2 ** 20).toFixed(0)} MiB stream (bytes from Redis / bytes served)`,
        hub: `${exact.toFixed(3)}× (${served.toLocaleString('en')} bytes served)`,
        baseline: `whole entries (XRANGE … COUNT 256): ${baseline.toFixed(1)}×`,
        ratio: exact / baseline,
        target: '≤ 1.1×',
        met: exact <= 1.1,
        lost: 0,
        duplicated: 0,
        data: { exact, baseline, served },
      });
    }
    return rows;
  } finally {
    redis.disconnect();
    await server.stop();
  }
}
