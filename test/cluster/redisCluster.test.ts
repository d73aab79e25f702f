import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis as RedisServer } from 'ioredis';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../server/config.js';
import { archiveKey, DirectoryObjectStore } from '../../server/logs/archive.js';
import { ClusterLogSource } from '../../server/logs/clusterLogSource.js';
import { ChunkUploader, readChunkMark } from '../../server/logs/liveChunks.js';
import { createRedisClient, type Redis } from '../../server/logs/redisClient.js';
import { appendChunk, closeNotices, deleteStream, expireStream, listUnexpiredStreams, RedisLogSource, tag, writeTimes } from '../../server/logs/redisLogStream.js';
import { freePort } from '../../server/cluster/services.js';
import { withTimeout } from '../../server/retry.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { pollFromZero } from '../helpers/httpPoller.js';
import { createProject, waitFor, waitForRun } from '../helpers/hub.js';
import { startRedisCluster } from '../helpers/redisCluster.js';
import { ResettingFollower } from '../helpers/resettingFollower.js';
import { setUp } from '../helpers/setup.js';
import { TestClient } from '../helpers/wsClient.js';
import { logSourceContract } from '../logs/logSource.contract.js';
import { PROTOCOL_ENV, PROTOCOL_PIPELINES, protocolSuite } from '../ws/protocol.suite.js';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A test body that cannot hang: it fails past `ms` (its `finally` still cleans up what it started). */
const within = <T>(ms: number, body: () => Promise<T>) => withTimeout(body(), ms, 'the test');

// ---- The log code on a Redis Cluster, directly ----

const redisCluster = await startRedisCluster();
/** The hub's and the worker's client, as their configuration builds it. */
function client(): Redis {
  const redis = createRedisClient(loadConfig({ ...redisCluster.env, HUB_DATABASE_URL: 'postgres://unused/db', HUB_REDIS_TIMEOUT_MS: '3000' }));
  redis.on('error', () => {});
  return redis;
}
let nextRun = 90_000;

logSourceContract('redis stream with live chunks on a Redis Cluster', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-rcluster-contract-'));
  const objects = new DirectoryObjectStore(path.join(dir, 'objects'));
  const file = path.join(dir, 'run.log');
  const runId = nextRun++;
  const redis = client();
  let uploader = new ChunkUploader(redis, objects, runId, file, 16, 0);
  const append = async (bytes: Buffer) => {
    fs.appendFileSync(file, bytes);
    const size = Number((await redis.get(`${tag(runId)}:size`)) ?? 0);
    assert.is(await appendChunk(redis, runId, size, bytes), size + bytes.length);
    await uploader.advance({ log: size + bytes.length, times: 0 });
  };
  return {
    source: new ClusterLogSource(redis, runId, objects, archiveKey(1, runId)),
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
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('every script and multi-key command of a run works on a Redis Cluster (one slot per run), and the sweep\'s SCAN finds unexpired streams on every master', () => within(30_000, async () => {
  const redis = client();
  try {
    const runs = Array.from({ length: 24 }, () => nextRun++);
    const masters = new Set<number>();
    for (const runId of runs) {
      masters.add((await redisCluster.shardOf(tag(runId))).master);
      assert.is(await appendChunk(redis, runId, 0, Buffer.from('line\n'), 3), 5);
      assert.is(await writeTimes(redis, runId, 0, Buffer.from('times'), 3), 5);
    }
    assert.ok(masters.size >= 2, `the runs are on ${masters.size} masters: the test needs several`);
    const listed = async () => {
      const ids: number[] = [];
      for await (const page of listUnexpiredStreams(redis)) ids.push(...page);
      return ids.filter((id) => runs.includes(id)).sort((a, b) => a - b);
    };
    assert.equal(await listed(), runs);
    for (const runId of runs.slice(0, 12)) await expireStream(redis, runId); // a MULTI of the run's keys
    assert.equal(await listed(), runs.slice(12), 'expired streams are no longer listed, on any master');
    for (const runId of runs) await deleteStream(redis, runId); // one DEL of the run's keys
    assert.equal(await listed(), []);
    assert.equal(await readChunkMark(redis, runs[0]), { chunked: 0, chunkBytes: 1024 * 1024, timesChunked: 0, timesChunkBytes: 131_070 });
  } finally {
    redis.disconnect();
  }
}));

/** How many sharded subscribers `channel` has on the node at `port`. */
async function shardSubscribers(port: number, channel: string): Promise<number> {
  const password = decodeURIComponent(new URL(redisCluster.url).password);
  const node = new RedisServer({ host: '127.0.0.1', port, password, commandTimeout: 2000, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  node.on('error', () => {});
  try {
    await node.connect();
    const [, count] = (await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
    return Number(count);
  } finally {
    node.disconnect();
  }
}

test('a watcher hears of appends by sharded pub/sub: its subscription is on the master of its run\'s slot, and only there; after a failover, on the new master', () => within(40_000, async () => {
  const redis = client();
  const runId = nextRun++;
  const channel = tag(runId);
  let hints = 0;
  const stop = new RedisLogSource(redis, runId).watch(() => hints++);
  try {
    const { master } = await redisCluster.shardOf(channel);
    await waitFor(async () => (await shardSubscribers(master, channel)) === 1, 'the sharded subscription on the slot\'s master', 10_000, 50);
    for (const port of redisCluster.ports.filter((port) => port !== master)) assert.is(await shardSubscribers(port, channel), 0, `no subscription on node ${port}`);
    // A coordinated failover (CLUSTER FAILOVER on the replica): the subscription follows the slot.
    const failover = await redisCluster.failOver(channel, { kill: false });
    await waitFor(async () => (await shardSubscribers(failover.to, channel)) === 1, 'the sharded subscription on the new master', 15_000, 100);
    const before = hints;
    assert.is(await waitFor(() => appendChunk(redis, runId, 0, Buffer.from('after the failover\n')).catch(() => null), 'an append on the new master', 10_000, 200), 19);
    await waitFor(() => hints > before, 'a hint after the append', 5000);
    console.log(`  (a coordinated failover took ${failover.ms} ms; the subscription moved to the new master)`);
  } finally {
    stop();
    closeNotices(redis);
    redis.disconnect();
  }
}));

test('a command on a Redis Cluster fails past its deadline, whether the cluster never answered (no node up) or froze (SIGSTOP), instead of waiting for ever', () => within(30_000, async () => {
  const dead = [await freePort(), await freePort()];
  const nowhere = createRedisClient({ redisUrl: `redis://:pw@127.0.0.1:${dead[0]}`, redisClusterNodes: [{ host: '127.0.0.1', port: dead[1] }], redisCaFile: null, redisTimeoutMs: 1000 });
  nowhere.on('error', () => {});
  const frozen = client();
  try {
    let started = Date.now();
    const never = await nowhere.get('x').then(() => null, (error: Error) => error);
    assert.ok(never, 'the command failed');
    const neverMs = Date.now() - started;
    assert.ok(neverMs < 3000, `failed after ${neverMs} ms`);
    await frozen.set('x', '1');
    redisCluster.signal('SIGSTOP');
    started = Date.now();
    const stuck = await frozen.get('x').then(() => null, (error: Error) => error);
    assert.ok(stuck, 'the command failed');
    const frozenMs = Date.now() - started;
    redisCluster.signal('SIGCONT');
    // The deadline (3 s), plus what the client's retries through redirects may add: never unbounded.
    assert.ok(frozenMs < 10_000, `failed after ${frozenMs} ms`);
    assert.is(await waitFor(() => frozen.get('x').catch(() => null), 'the cluster to answer again', 15_000, 200), '1');
    console.log(`  (no node up: "${never.message}" after ${neverMs} ms with a 1 s deadline; frozen: "${stuck.message}" after ${frozenMs} ms with a 3 s deadline)`);
  } finally {
    redisCluster.signal('SIGCONT');
    nowhere.disconnect();
    frozen.disconnect();
  }
}));

test.after(() => redisCluster.stop());
test.run();

// ---- Hubs and workers on a Redis Cluster ----

const TICKS = 60;
const TICKING = { ticking: { steps: [{ name: 'tick', command: ['sh', '-c', `i=0; while [ $i -lt ${TICKS} ]; do echo "tick $i of run $HUB_RUN_ID"; sleep 0.1; i=$((i + 1)); done`] }], scopes: { all: 'tick' } } };

const onCluster = suite<{ cluster: Cluster }>('a cluster of hubs and workers on a Redis Cluster');
setUp(onCluster, async (context) => {
  // A lease long enough for a loaded machine (as in redisFailover.test.ts): the failover is what is tested, not the lease.
  context.cluster = await startCluster({ pipelines: TICKING, workers: 1, redisCluster: true, env: { HUB_REDIS_TIMEOUT_MS: '3000', HUB_WORKER_TIMEOUT_MS: '15000' } });
});
onCluster.after(({ cluster }) => cluster?.stop());

/** Starts a ticking run with a follower on each hub and an HTTP poller; `during` runs once the log is under way. */
async function followRun(cluster: Cluster, during: (runId: number) => Promise<void>) {
  const [a, b] = cluster.hubs;
  const projectId = await createProject(a, 'ticking');
  const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
  const followers = [new ResettingFollower(await TestClient.connect(a.url), run.id), new ResettingFollower(await TestClient.connect(b.url), run.id)];
  try {
    const polled = pollFromZero(b, projectId, run.id);
    polled.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await followers[1].client.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'ticks through hub B', 20_000);
    const duringAt = Date.now();
    await during(run.id);
    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 30_000);
    assert.is(ended.status, 'completed', `the run completed (${ended.error_message})`);
    const raw = Buffer.from((await b.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    assert.is(raw.length, ended.log_size);
    const ticks = raw.toString().split('\n').filter((line) => line.startsWith('tick '));
    assert.equal(ticks, Array.from({ length: TICKS }, (_, i) => `tick ${i} of run ${run.id}`), 'every tick once, from the first');
    // The worker's own file is the source: the log served is it, byte for byte.
    const file = fs.readdirSync(cluster.workers[0].logs, { recursive: true, encoding: 'utf8' }).map((name) => path.join(cluster.workers[0].logs, name)).find((name) => name.endsWith(`${run.id}.log`));
    if (file) assert.is(sha(fs.readFileSync(file)), sha(raw), 'the log served equals the worker\'s log file');
    for (const [index, follower] of followers.entries()) {
      await follower.client.waitFor((m) => m.type === 'complete' && m.run_id === run.id && follower.copy().completes.length > 0, `follower ${index}'s complete`, 20_000);
      const { bytes, completes } = follower.copy();
      assert.is(sha(bytes), sha(raw), `follower ${index} has the log, every byte once`);
      assert.is(completes.length, 1, `follower ${index}: one complete`);
      assert.is(completes[0].next, raw.length);
    }
    const { bytes: viaHttp, failures } = await polled;
    assert.is(sha(viaHttp), sha(raw), 'the HTTP poller has the log');
    return { resets: followers.map((f) => f.resets), failures, endedAfterMs: Date.parse(ended.finished_at) - duringAt, workerFile: Boolean(file) };
  } finally {
    for (const follower of followers) await follower.client.close();
  }
}

onCluster('a run through a worker and two hubs on a Redis Cluster: followers on both hubs get every byte once, then one complete', ({ cluster }) => within(60_000, async () => {
  const result = await followRun(cluster, async () => {});
  assert.equal(result.resets, [0, 0], 'no log_reset');
}));

onCluster('the master of the run\'s slot killed mid-run, its replica taking over: nothing lost, followers byte-identical to the log file, one complete each', ({ cluster }) => within(60_000, async () => {
  let failover = { ms: 0, from: 0, to: 0 };
  let runId = 0;
  const result = await followRun(cluster, async (id) => {
    runId = id;
    failover = await cluster.redisCluster!.failOver(tag(id), { kill: true });
  });
  assert.is((await cluster.redisCluster!.shardOf(tag(runId))).master, failover.to, 'the replica serves the run\'s slot now');
  console.log(`  (master ${failover.from} SIGKILLed, replica ${failover.to} master and the cluster ok after ${failover.ms} ms; the run completed ${result.endedAfterMs} ms after; resets seen: ${result.resets.join(', ')}; HTTP poller: ${result.failures} failed requests; compared with the worker's file: ${result.workerFile})`);
}));

onCluster.run();

// The WebSocket protocol suite against a hub whose cluster runs on a Redis Cluster.
protocolSuite('cluster hub on a Redis Cluster', async () => {
  const cluster = await startCluster({ pipelines: PROTOCOL_PIPELINES, env: PROTOCOL_ENV, redisCluster: true });
  return { hub: cluster.hubs[0], stop: () => cluster.stop() };
});
