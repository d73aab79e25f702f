/**
 * Cluster rows: the same writer and clients through PostgreSQL + Redis + 2 hubs + 2 workers, each
 * next to the single-process hub measured in the same run. Clients are split over both hubs.
 */
import type WebSocket from 'ws';
import type { TestHub } from '../test/helpers/hub.js';
import { startCluster, type Cluster } from '../test/helpers/cluster.js';
import type { Collector } from './collector.js';
import { BENCH_ENV, BENCH_PIPELINES, EVERY_LINE_ONE_IN, connectClients, createBenchProject, follow, type HubClient } from './harness.js';
import { Histogram } from './histogram.js';
import { closeAll, correctness, followRun, ms, type Result } from './scenarios.js';
import { MAX_P99_MS, bestOf, bracket, describe, judge } from './sustained.js';

/**
 * The lease is the default one (15 s), not the tests' 5 s: with 100 runs starting at once on two
 * cores a worker's renewals came up to 3 s apart, and its runners, by design, stopped steps 2.85 s
 * (0.57 of a 5 s lease) after the last one: lines counted lost that were a safety stop under overload.
 */
export function startBenchCluster(slots: number, hubs?: number): Promise<Cluster> {
  return startCluster({ pipelines: BENCH_PIPELINES, hubs, env: { ...BENCH_ENV, HUB_WORKER_TIMEOUT_MS: '15000', HUB_WORKER_SLOTS: String(slots) } });
}

/** `runs` runs at `rate` lines/s each, `subscribers` per run split over the hubs; started through the first hub. */
export async function followOnCluster(cluster: Cluster, runs: number, subscribers: number, rate: number, seconds: number, histogram: Histogram, startDelayMs = 0): Promise<Collector[]> {
  const [first] = cluster.hubs;
  const count = Math.round(rate * seconds);
  const started = await Promise.all(Array.from({ length: runs }, async () => {
    const projectId = await createBenchProject(first, count, rate, startDelayMs);
    const sockets: WebSocket[] = [];
    for (const [index, hub] of cluster.hubs.entries()) sockets.push(...(await connectClients(hub, Math.ceil(subscribers / cluster.hubs.length) - (index === 0 ? 0 : (subscribers % cluster.hubs.length ? 1 : 0)))));
    const { body } = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const clients = sockets.map((socket, index) => follow(socket, body.id, histogram, Math.ceil(rate * 0.2), index % EVERY_LINE_ONE_IN === 0));
    return { sockets, clients };
  }));
  return collectFollowers(started);
}

/** Waits (2 minutes at most) for every follower's `complete`, closes their sockets, and gives their collectors. */
export async function collectFollowers(started: { sockets: WebSocket[]; clients: HubClient[] }[]): Promise<Collector[]> {
  await Promise.race([Promise.all(started.flatMap(({ clients }) => clients.map((c) => c.completed))), new Promise((resolve) => setTimeout(resolve, 120_000))]);
  for (const { sockets } of started) closeAll(sockets);
  return started.flatMap(({ clients }) => clients.map((c) => c.collector));
}

export async function clusterLatency(cluster: Cluster, single: TestHub, rate: number, subscribers: number, seconds: number): Promise<Result> {
  const through = new Histogram();
  const collectors = await followOnCluster(cluster, 1, subscribers, rate, seconds, through);
  const alone = new Histogram();
  await followRun(single, subscribers, rate * seconds, rate, alone);
  const c = through.summary();
  const s = alone.summary();
  return {
    scenario: `cluster latency ${rate}/s × ${subscribers} sub (2 hubs × 2 workers)`,
    hub: ms(c),
    baseline: `single process: ${ms(s)}`,
    ratio: c.p99 / s.p99,
    ...correctness(collectors, rate * seconds),
    data: { cluster: c, single: s },
  };
}

export async function clusterManyRuns(cluster: Cluster, runs: number, rate: number, seconds: number): Promise<Result> {
  const histogram = new Histogram();
  const collectors = await followOnCluster(cluster, runs, 1, rate, seconds, histogram);
  const h = histogram.summary();
  return {
    scenario: `cluster: ${runs} concurrent runs × ${rate}/s, 1 sub each, over 2 workers`,
    hub: ms(h),
    baseline: '–',
    ...correctness(collectors, rate * seconds),
    data: { hub: h },
  };
}

/**
 * The highest rate one run sustains through the cluster to `subscribers` clients split over both
 * hubs (the single-process definition: nothing lost, p99 under 250 ms, last line within 3 s), with
 * the single process's highest rate measured the same way in the same run as the baseline.
 */
export async function clusterSustained(cluster: Cluster, single: TestHub, subscribers: number, target: number, seconds: number): Promise<Result> {
  const through = await bracket(target, MAX_P99_MS, async (rate, runSeconds = seconds) => {
    const histogram = new Histogram();
    const count = Math.round(rate * runSeconds);
    return judge(rate, await followOnCluster(cluster, 1, subscribers, rate, runSeconds, histogram), histogram, count);
  });
  const alone = await bracket(target, MAX_P99_MS, async (rate, runSeconds = seconds) => {
    const histogram = new Histogram();
    const count = Math.round(rate * runSeconds);
    return judge(rate, await followRun(single, subscribers, count, rate, histogram), histogram, count);
  });
  const best = bestOf(through);
  const aloneBest = bestOf(alone);
  return {
    scenario: `cluster max sustained rate → ${subscribers} sub over 2 hubs (${seconds} s runs)`,
    hub: describe(through),
    baseline: `single process: ${describe(alone)}`,
    ratio: best && aloneBest ? best.rate / aloneBest.rate : undefined,
    lost: through.reduce((sum, a) => sum + a.lost, 0),
    duplicated: through.reduce((sum, a) => sum + a.duplicated, 0),
    data: { cluster: through, single: alone },
  };
}
