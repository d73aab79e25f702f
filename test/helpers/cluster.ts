import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../server/paths.js';
import { startHub, waitFor, type HubOptions, type TestHub } from './hub.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { startRedis, type TestRedis } from './redis.js';
import { startRedisCluster, type TestRedisCluster } from './redisCluster.js';
import { watchForRejection } from './rejections.js';

export interface ClusterWorker {
  id: string;
  logs: string;
  process: ChildProcess;
  output: () => string;
}

export interface Cluster {
  env: Record<string, string>;
  hubs: TestHub[];
  workers: ClusterWorker[];
  postgres: TestPostgres;
  /** one Redis, or the Redis Cluster */
  redis: TestRedis;
  /** with `redisCluster`: the Redis Cluster (as `redis`) */
  redisCluster: TestRedisCluster | null;
  stop(): Promise<void>;
}

/**
 * The lease of the test clusters: a worker restarted within it keeps its runs, and a worker gone is
 * given up after it. Not shorter: a restart took 3.4 s on a loaded machine (load 11 on 2 cores), and
 * a worker that cannot renew for 2/3 of it stops its runs.
 */
export const TEST_LEASE_MS = '5000';

/** How a process is started: here, or on another machine (a network namespace: test/helpers/netns.ts). */
export type Spawner = NonNullable<HubOptions['spawnOn']>;

/** A worker process (`dist/server/worker/main.js`) with a folder of its own, as on its own machine. */
export async function startWorker(env: Record<string, string>, id: string, dir = fs.mkdtempSync(path.join(os.tmpdir(), `hub-worker-${id}-`)), spawnOn: Spawner = spawn): Promise<ClusterWorker> {
  const child = spawnOn(process.execPath, [path.join(projectRoot, 'dist/server/worker/main.js')], {
    env: { ...process.env, HUB_WORKER_TIMEOUT_MS: TEST_LEASE_MS, HUB_CANCEL_GRACE_MS: '500', ...env, HUB_WORKER_ID: id, HUB_LOGS_DIR: path.join(dir, 'logs'), HUB_DATA_DIR: path.join(dir, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  watchForRejection(child, `worker ${id}`, () => output);
  await waitFor(() => output.includes('worker') && output.includes('started'), `worker ${id} to start`, 15_000);
  return { id, logs: path.join(dir, 'logs'), process: child, output: () => output };
}

/** PostgreSQL, Redis, hubs and workers (each worker with a logs folder of its own, as on separate machines). */
/** `redisCluster`: on a Redis Cluster of 3 masters and 3 replicas (test/helpers/redisCluster.ts), not one Redis. */
export async function startCluster(options: Pick<HubOptions, 'pipelines'> & { hubs?: number; workers?: number; env?: Record<string, string>; redisUrl?: (url: string) => Promise<string>; redisCluster?: boolean }): Promise<Cluster> {
  const postgres = await startPostgres();
  const redisCluster = options.redisCluster ? await startRedisCluster() : null;
  const redis = redisCluster ?? (await startRedis());
  const archive = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-archive-'));
  // `redisUrl`: the address the cluster is given instead of Redis's own (a proxy in front of it).
  const redisEnv = redisCluster ? redisCluster.env : { HUB_REDIS_URL: options.redisUrl ? await options.redisUrl(redis.url) : redis.url };
  const env = { HUB_DATABASE_URL: await postgres.createDatabase(), ...redisEnv, HUB_DEMO: '0', HUB_WORKER_TIMEOUT_MS: TEST_LEASE_MS, HUB_ARCHIVE_DIR: archive, ...options.env };
  const hubs: TestHub[] = [];
  for (let i = 0; i < (options.hubs ?? 2); i++) hubs.push(await startHub({ pipelines: options.pipelines, env }));
  const workers: ClusterWorker[] = [];
  for (let i = 0; i < (options.workers ?? 2); i++) workers.push(await startWorker(env, `w${i + 1}`));
  return {
    env,
    hubs,
    workers,
    postgres,
    redis,
    redisCluster,
    async stop() {
      for (const worker of workers) worker.process.kill('SIGKILL');
      await Promise.all(hubs.map((hub) => hub.stop()));
      await redis.stop();
      await postgres.stop();
      fs.rmSync(archive, { recursive: true, force: true });
    },
  };
}
