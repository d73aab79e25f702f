/**
 * `npm run bench`: the real server and runner, real WebSocket and HTTP clients in this process,
 * each figure next to a baseline measured in the same run. Prints a table, writes bench/results.json,
 * and exits non-zero if any scenario lost, duplicated or reordered a line.
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { startBenchHub } from './harness.js';
import * as scenarios from './scenarios.js';
import { maxSustained } from './sustained.js';
import { captureLatency, captureThroughput } from './capture.js';
import { clusterLatency, clusterManyRuns, clusterSustained, startBenchCluster } from './cluster.js';
import { hubScaling, redisCapacity } from './scaling.js';
import { readAmplification, shipCommands } from './redisCost.js';
import type { Result } from './scenarios.js';

const quick = process.argv.includes('--quick');
// --cluster: only the cluster rows (PostgreSQL + Redis + 2 hubs + 2 workers) beside the single process.
const clusterOnly = process.argv.includes('--cluster');
// --only=<text>: run the scenarios whose name contains it (for profiling one of them).
// --scaling: only the scaling rows (cgroup CPU budgets, root; bench/scaling.ts).
const scalingOnly = process.argv.includes('--scaling');
// --redis: only what the log path costs Redis (bench/redisCost.ts).
const redisOnly = process.argv.includes('--redis');
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice(7);
const results: Result[] = [];
// BENCH_HUB_NODE_ARGS: flags for the server's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
const hub = await startBenchHub({}, process.env.BENCH_HUB_NODE_ARGS?.split(' ').filter(Boolean));
const step = async (name: string, run: () => Promise<Result>) => {
  if ((only && !name.includes(only)) || (clusterOnly && !name.startsWith('cluster')) || (scalingOnly && !name.startsWith('scaling')) || (redisOnly && !name.startsWith('redis'))) return;
  process.stdout.write(`… ${name}\n`);
  const result = await run();
  results.push(result);
  process.stdout.write(`  ${result.scenario}: ${result.hub} | baseline ${result.baseline}${result.lost || result.duplicated ? ` | LOST ${result.lost} DUP ${result.duplicated}` : ''}\n`);
};

/** A scenario that gives several rows (one per figure it compares). */
const stepRows = async (name: string, run: () => Promise<Result[]>) => {
  let rows: Result[] = [];
  await step(name, async () => {
    rows = await run();
    return rows[0];
  });
  results.push(...rows.slice(1));
  for (const row of rows.slice(1)) process.stdout.write(`  ${row.scenario}: ${row.hub} | baseline ${row.baseline}\n`);
};

try {
  if (scalingOnly) {
    await stepRows('scaling redis', () => redisCapacity(quick ? 250 : 500, 8000, quick ? 3 : 5));
    await stepRows('scaling hubs', () => hubScaling(100, 30_000, quick ? 1.5 : 3));
  }
  await stepRows('redis commands', () => shipCommands(quick ? 4 : 10, [100, 1000], quick ? 3 : 5));
  await stepRows('redis reads', () => readAmplification(quick ? 16 * 2 ** 20 : 64 * 2 ** 20));
  if (clusterOnly) {
    const cluster = await startBenchCluster(60);
    try {
      await step('cluster latency 1000 × 10', () => clusterLatency(cluster, hub, 1000, 10, quick ? 3 : 6));
      await step('cluster latency 10000 × 100', () => clusterLatency(cluster, hub, 10_000, 100, quick ? 3 : 6));
      await step('cluster 100 runs', () => clusterManyRuns(cluster, 100, 100, quick ? 5 : 10));
      for (const [subscribers, target] of [[2, 200_000], [100, 50_000]]) {
        await step(`cluster sustained → ${subscribers}`, () => clusterSustained(cluster, hub, subscribers, target, quick ? 1.5 : 3));
      }
    } finally {
      await cluster.stop();
    }
  }
  // Latency and fan-out: three rounds of 2 s a side (one in --quick), the median round's p50 and p99.
  const rounds = quick ? 1 : 3;
  for (const [rate, subscribers] of [[1000, 1], [1000, 100], [10_000, 1], [10_000, 100]]) {
    await step(`latency ${rate}/s × ${subscribers}`, () => scenarios.latency(hub, rate, subscribers, 2, rounds));
  }
  await step('fan-out 5000/s × 500', () => scenarios.fanOut(hub, 500, 5000, 2, rounds));
  await step('throughput', () => scenarios.throughput(hub, quick ? 500_000 : 2_000_000));
  await step('catch-up', () => scenarios.catchUp(hub, 100, quick ? 200_000 : 1_000_000));
  await step('timestamps', () => scenarios.timestampsCost(hub, 10, quick ? 200_000 : 1_000_000));
  // The issue's targets: the rate each holds with nothing lost and p99 under 250 ms.
  for (const [subscribers, target, p99] of [[1, 1_000_000], [100, 100_000, 20], [500, 20_000]]) {
    await step(`sustained → ${subscribers}`, () => maxSustained(hub, subscribers, target, quick ? 1.5 : 3, p99));
  }
  // Secrets masked at capture: the runner's pipe and masker against a step writing straight to the file.
  for (const secrets of [0, 1, 100]) await step(`capture ${secrets} secrets`, () => captureThroughput(hub.dir, secrets, quick ? 500_000 : 2_000_000, quick ? 2 : 3));
  await step('capture latency', () => captureLatency(hub, 100, 1000, quick ? 2 : 3, quick ? 1 : 3));
  await step('50 runs', () => scenarios.manyRuns(hub, 50, 1000, quick ? 6 : 8, 4));
  await step('start burst', () => scenarios.startBurst(hub, 50));
  await step('run start', () => scenarios.runStart(hub, 20, false, 500));
  await step('run start (sh step)', () => scenarios.runStart(hub, 20, true, 500));
  await step('run start (sh step, back to back)', () => scenarios.runStart(hub, 20, true, 0));
  // Last, on a server of their own that has served nothing else: its RSS with a 1 GiB log is what the
  // memory row is about, not what the allocator kept from the heavier scenarios (which report their
  // peak RSS), and the 1 GiB log's leftovers do not touch the other rows.
  const freeBytes = Number(execSync(`df -B1 --output=avail ${hub.dir} | tail -1`).toString().trim());
  const logBytes = quick ? 128 * 1024 ** 2 : 1024 ** 3;
  if ((only && !'tail-N memory search under load'.includes(only)) || clusterOnly || scalingOnly || redisOnly) {
    // not asked for
  } else if (freeBytes > 3 * logBytes) {
    const fresh = await startBenchHub({}, process.env.BENCH_HUB_NODE_ARGS?.split(' ').filter(Boolean));
    try {
      process.stdout.write(`… writing a ${(logBytes / 1024 ** 2).toFixed(0)} MiB log\n`);
      const log = await scenarios.bigLog(fresh, logBytes);
      await step('tail-N', () => scenarios.tailN(fresh, log));
      await stepRows('search', () => scenarios.search(fresh, log));
      await step('memory', () => scenarios.memory(fresh, log, 500, quick ? 10 : 30));
      if (!only || 'search under load'.includes(only)) {
        fs.rmSync(log.file); // room for the next
        process.stdout.write(`… writing a ${(logBytes / 1024 ** 2).toFixed(0)} MiB log of search's worst cases\n`);
        const worst = await scenarios.pathologicalLog(fresh, logBytes);
        await step('search under load', () => scenarios.searchUnderLoad(fresh, worst, quick ? 10 : 20));
      }
    } finally {
      await fresh.stop();
      fs.rmSync(fresh.dir, { recursive: true, force: true });
    }
  } else {
    process.stdout.write(`skipping tail-N, search and memory: only ${(freeBytes / 1024 ** 3).toFixed(1)} GiB free\n`);
  }
} finally {
  await hub.stop();
  fs.rmSync(hub.dir, { recursive: true, force: true });
}

const failed = results.filter((r) => r.lost > 0 || r.duplicated > 0);
const rows = results.map((r) => `| ${r.scenario} | ${r.hub} | ${r.baseline} | ${r.ratio === undefined ? '–' : `${r.ratio.toFixed(2)}×`} | ${r.target ?? '–'} | ${r.met === undefined ? '–' : r.met ? 'yes' : 'NO'} | ${r.lost}/${r.duplicated} |`);
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`;
const table = ['| scenario | hub | baseline (same run) | ratio | target | met | lost/dup |', '|---|---|---|---|---|---|---|', ...rows].join('\n');
process.stdout.write(`\n${machine}\n\n${table}\n`);
fs.writeFileSync(new URL('./results.json', new URL('../../bench/', import.meta.url)), JSON.stringify({ machine, date: new Date().toISOString(), quick, results }, null, 2));
if (failed.length > 0) {
  process.stdout.write(`\nFAILED: lines lost or duplicated in ${failed.map((r) => r.scenario).join(', ')}\n`);
  process.exitCode = 1;
}
