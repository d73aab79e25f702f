/**
 * `npm run bench -- --scaling`: how capacity grows with machines, each part under a CPU budget of
 * its own (cgroup v1, root). Rows: sustained rate to 100 subscribers through 1, 2 and 4 hubs at
 * `--hub-cpus` each, for one run and for runs spread over the hubs (workers, PostgreSQL, Redis and
 * this process uncapped); Redis memory per running run; the most runs × 100 lines/s one Redis at
 * `--redis-cpus` carries with p99 < 250 ms, shipped through the real LogShipper from this process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { LogShipper } from '../server/logs/logShipper.js';
import { startRedis } from '../test/helpers/redis.js';
import { cpuBudget, removeBudgetRoot, type CpuBudget } from './cgroup.js';
import { collectFollowers, followOnCluster, startBenchCluster } from './cluster.js';
import type { Collector } from './collector.js';
import { EVERY_LINE_ONE_IN, connectClients, createBenchProject, follow, serverCpuSeconds } from './harness.js';
import type { Cluster } from '../test/helpers/cluster.js';
import { Histogram } from './histogram.js';
import type { Result } from './scenarios.js';
import { MAX_P99_MS, bestOf, bracket, describe, judge, type Attempt } from './sustained.js';

/**
 * Each hub's budget (`--hub-cpus=N`, 0.4 by default). On a 2-core machine 4 hubs at 0.4 leave too
 * little for the uncapped feed to fill them; a smaller budget makes the hubs the limit, as they are
 * when each has a machine of its own and the feed has the rest.
 */
const HUB_CPUS = Number(process.argv.find((arg) => arg.startsWith('--hub-cpus='))?.slice(11) ?? 0.4);
/**
 * Redis's budget (`--redis-cpus=N`, 1 by default). The load generator needs about a CPU per 1 000
 * runs, so on 2 cores a full CPU of Redis cannot be filled: at a fraction of a CPU it can, and Redis
 * (one thread, CPU-bound when full) carries runs in proportion to its CPU; the row says so.
 */
const REDIS_CPUS = Number(process.argv.find((arg) => arg.startsWith('--redis-cpus='))?.slice(13) ?? 1);
const LINE = `${'x'.repeat(59)}\n`; // 60 bytes, a typical build log line

/** Halves the gap between the best rate held and the lowest failed above it, `steps` times. */
async function refine(attempts: Attempt[], attempt: (rate: number) => Promise<Attempt>, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) {
    const held = bestOf(attempts)?.rate ?? 0;
    const failed = attempts.filter((a) => !a.passed && a.rate > held).sort((a, b) => a.rate - b.rate)[0]?.rate;
    if (!held || failed === undefined || failed - held < held * 0.05) return;
    attempts.push(await attempt(Math.round((held + failed) / 2)));
  }
}

/** How the load meets the hubs: one run's subscribers spread over every hub, or each run's on one hub. */
type Placement = 'one run' | 'runs by hub';
/** `--placement=one|runs`: the rows of one placement only (both by default). */
const PLACEMENTS: Placement[] = (['one run', 'runs by hub'] as const).filter((placement) => {
  const only = process.argv.find((arg) => arg.startsWith('--placement='))?.slice(12);
  return !only || placement.startsWith(only);
});
/**
 * The runs' first lines wait this long, so the subscribers are all in before lines come: a hub at
 * 0.1 CPU takes about a second to take 100 new subscriptions, which is no line's latency (viewers
 * join once, then watch).
 */
const JOIN_MS = 2000;
/** Runs of the "runs by hub" rows: as many as the most hubs, each run's subscribers all on one hub. */
const PARTITIONED_RUNS = 4;

/**
 * `subscribers` following `rate` lines/s in all: one run's subscribers split over the hubs, or
 * PARTITIONED_RUNS runs at rate/4 each whose subscribers are all on hub (run mod hubs), as a load
 * balancer that sends a run's viewers to one hub would place them.
 */
async function followPlaced(view: Cluster, placement: Placement, subscribers: number, rate: number, seconds: number, histogram: Histogram): Promise<Collector[]> {
  if (placement === 'one run') return followOnCluster(view, 1, subscribers, rate, seconds, histogram, JOIN_MS);
  const [first] = view.hubs;
  const perRun = Math.round(rate / PARTITIONED_RUNS);
  const count = Math.round(perRun * seconds);
  const started = await Promise.all(Array.from({ length: PARTITIONED_RUNS }, async (_, run) => {
    const projectId = await createBenchProject(first, count, perRun, JOIN_MS);
    const sockets = await connectClients(view.hubs[run % view.hubs.length], subscribers / PARTITIONED_RUNS);
    const { body } = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    return { sockets, clients: sockets.map((socket, index) => follow(socket, body.id, histogram, Math.ceil(perRun * 0.2), index % EVERY_LINE_ONE_IN === 0)) };
  }));
  return collectFollowers(started);
}

/**
 * Sustained rate to `subscribers` through 1, 2 and 4 hubs, each in a budget of HUB_CPUS, for each
 * placement. Every hub that serves a run reads all of it (from Redis), and its subscribers share
 * its frames: one run's rate grows little with hubs; runs spread over hubs show what machines add.
 */
export async function hubScaling(subscribers: number, target: number, seconds: number): Promise<Result[]> {
  const cluster = await startBenchCluster(8, 4);
  const budgets: CpuBudget[] = [];
  try {
    for (const [index, hub] of cluster.hubs.entries()) {
      const budget = cpuBudget(`hub${index + 1}`, HUB_CPUS);
      budget.add(hub.process.pid!);
      budgets.push(budget);
    }
    // Every hub warmed up first (its code optimised by the JIT, its pools filled): a cold hub at a
    // fraction of a CPU takes seconds to get there, which the first row it serves in would measure.
    for (let round = 0; round < 2; round++) await followOnCluster(cluster, 1, subscribers, Math.round((target * HUB_CPUS) / 0.4), 3, new Histogram());
    const rows: Result[] = [];
    for (const placement of PLACEMENTS) {
      let one = 0;
      for (const hubs of [1, 2, 4]) {
        const view = { ...cluster, hubs: cluster.hubs.slice(0, hubs) };
        const cpuBefore = view.hubs.map(serverCpuSeconds);
        const started = performance.now();
        const attempt = async (rate: number, runSeconds = seconds) => {
          const histogram = new Histogram();
          // the lines each subscriber's run writes
          const count = Math.round((placement === 'one run' ? rate : Math.round(rate / PARTITIONED_RUNS)) * runSeconds);
          return judge(rate, await followPlaced(view, placement, subscribers, rate, runSeconds, histogram), histogram, count);
        };
        // 1 hub from a target that follows the budget (30 000/s at 0.4 CPU); more from what 1 held
        // times the hubs (linear), then the bracket and the halving find the rate.
        const from = one ? one * hubs : Math.round((target * HUB_CPUS) / 0.4);
        const attempts = await bracket(from, MAX_P99_MS, attempt);
        await refine(attempts, attempt, 3);
        const cpu = view.hubs.reduce((sum, hub, i) => sum + serverCpuSeconds(hub) - cpuBefore[i], 0) / ((performance.now() - started) / 1000);
        const best = bestOf(attempts)?.rate ?? 0;
        if (hubs === 1) one = best;
        const what = placement === 'one run' ? `one run's ${subscribers} sub over the hubs` : `${PARTITIONED_RUNS} runs × ${subscribers / PARTITIONED_RUNS} sub, each run's on one hub`;
        rows.push({
          scenario: `scaling: sustained → ${what}, ${hubs} hub${hubs > 1 ? 's' : ''} × ${HUB_CPUS} CPU (cgroup)`,
          hub: `${describe(attempts)}; hubs used ${cpu.toFixed(2)} CPU on average`,
          baseline: hubs === 1 ? '–' : `1 hub: ${one.toLocaleString('en')}/s`,
          ratio: hubs === 1 || !one ? undefined : best / one,
          target: hubs === 2 ? '≥ 1.8×' : hubs === 4 ? '≥ 3.2×' : undefined,
          met: hubs === 1 || !one ? undefined : best / one >= (hubs === 2 ? 1.8 : 3.2),
          lost: attempts.reduce((sum, a) => sum + a.lost, 0),
          duplicated: attempts.reduce((sum, a) => sum + a.duplicated, 0),
          data: { placement, attempts, hubCpu: cpu },
        });
      }
    }
    return rows;
  } finally {
    for (const budget of budgets) budget.remove();
    await cluster.stop();
    removeBudgetRoot();
  }
}

/** CPU seconds process `pid` has used (/proc/<pid>/stat utime + stime). */
function cpuSecondsOf(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Load {
  /** CPUs Redis and this process (the load generator) used meanwhile: which one was the limit */
  redisCpu: number;
  loadCpu: number;
  p99: number;
  p50: number;
  lines: number;
  commandsPerRunSecond: number;
  memoryPerRun: number;
}

/** `runs` logs each growing by 10 lines every 100 ms for `seconds`, shipped through LogShipper; latency: append to shipped. */
async function shipLoad(redis: Redis, redisPid: number, dir: string, runs: number, seconds: number, firstId: number): Promise<Load> {
  const histogram = new Histogram();
  const memory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))![1]);
  const memoryBefore = await memory();
  const files = Array.from({ length: runs }, (_, i) => path.join(dir, `${firstId + i}.log`));
  for (const file of files) fs.writeFileSync(file, '');
  const shippers = files.map((file, i) => new LogShipper(redis, firstId + i, file));
  const batch = LINE.repeat(10);
  const commandsBefore = await commands();
  const redisCpuBefore = cpuSecondsOf(redisPid);
  const loadCpuBefore = process.cpuUsage();
  const started = performance.now();
  let lines = 0;
  const pending: Promise<void>[] = [];
  for (let tick = 0; tick < seconds * 10; tick++) {
    const due = started + tick * 100;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    for (const [i, file] of files.entries()) {
      fs.appendFileSync(file, batch);
      lines += 10;
      const at = performance.now();
      pending.push(shippers[i].ship().then(() => histogram.add(performance.now() - at)));
    }
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  const redisCpu = (cpuSecondsOf(redisPid) - redisCpuBefore) / elapsed;
  const used = process.cpuUsage(loadCpuBefore);
  const loadCpu = (used.user + used.system) / 1e6 / elapsed;
  const commandsPerRunSecond = ((await commands()) - commandsBefore) / runs / elapsed;
  const memoryPerRun = ((await memory()) - memoryBefore) / runs;
  for (const shipper of shippers) shipper.close();
  const { p50, p99 } = histogram.summary();
  return { redisCpu, loadCpu, p99, p50, lines, commandsPerRunSecond, memoryPerRun };
}

/** The most runs × 100 lines/s one Redis at REDIS_CPUS carries (p99 append→shipped < 250 ms), from `from` per CPU up by half each time. */
export async function redisCapacity(from: number, upTo: number, seconds: number): Promise<Result[]> {
  const server = await startRedis();
  const redis = new Redis(server.url, { maxRetriesPerRequest: 2, commandTimeout: 10_000 });
  const budget = cpuBudget('redis', REDIS_CPUS);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-scaling-'));
  try {
    const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))![1]);
    budget.add(redisPid);
    const loads: { runs: number; load: Load }[] = [];
    let firstId = 1;
    for (let runs = Math.max(10, Math.round(from * REDIS_CPUS)); runs <= upTo; runs = Math.round(runs * 1.5)) {
      const load = await shipLoad(redis, redisPid, dir, runs, seconds, firstId);
      firstId += runs;
      await redis.flushall();
      for (const file of fs.readdirSync(dir)) fs.rmSync(path.join(dir, file));
      loads.push({ runs, load });
      process.stdout.write(`  ${runs} runs: p50 ${load.p50.toFixed(1)} ms p99 ${load.p99.toFixed(1)} ms, ${load.commandsPerRunSecond.toFixed(1)} commands/run-s, ${(load.memoryPerRun / 1024).toFixed(1)} KiB/run; Redis ${load.redisCpu.toFixed(2)} CPU, load generator ${load.loadCpu.toFixed(2)} CPU\n`);
      if (load.p99 >= MAX_P99_MS) break;
    }
    const held = loads.filter((l) => l.load.p99 < MAX_P99_MS).at(-1);
    const first = loads[0].load;
    const perCpu = Math.round((held?.runs ?? 0) / REDIS_CPUS);
    return [{
      scenario: `scaling: runs × 100 lines/s one Redis at ${REDIS_CPUS} CPU carries (p99 append→shipped < ${MAX_P99_MS} ms; LogShipper, one load process uncapped)`,
      hub: loads.map((l) => `${l.runs}: p99 ${l.load.p99.toFixed(0)} ms (Redis ${l.load.redisCpu.toFixed(2)} CPU, load ${l.load.loadCpu.toFixed(2)})`).join(', '),
      baseline: held ? `held at ${held.runs}${REDIS_CPUS === 1 ? '' : ` at ${REDIS_CPUS} CPU: ${perCpu.toLocaleString('en')} per Redis CPU`}` : 'none held',
      target: '≥ 2 000 at 1 CPU',
      met: perCpu >= 2000,
      lost: 0,
      duplicated: 0,
      data: { loads },
    }, {
      scenario: `scaling: Redis per running run at 100 lines/s × 60 B, after ${seconds} s (${loads[0].runs} runs)`,
      hub: `${first.commandsPerRunSecond.toFixed(1)} commands/run-s; used_memory ${(first.memoryPerRun / 1024).toFixed(1)} KiB/run`,
      baseline: '–',
      lost: 0,
      duplicated: 0,
      data: { ...first },
    }];
  } finally {
    budget.remove();
    redis.disconnect();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    removeBudgetRoot();
  }
}
