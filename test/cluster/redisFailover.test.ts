import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCluster } from '../helpers/cluster.js';
import { pollFromZero } from '../helpers/httpPoller.js';
import { createProject, waitFor, waitForRun } from '../helpers/hub.js';
import { startRedis } from '../helpers/redis.js';
import { ResettingFollower } from '../helpers/resettingFollower.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { TestClient } from '../helpers/wsClient.js';

const TICKING = { ticking: { steps: [{ name: 'tick', command: ['sh', '-c', 'i=0; while [ $i -lt 80 ]; do echo "tick $i of run $HUB_RUN_ID"; sleep 0.1; i=$((i + 1)); done'] }], scopes: { all: 'tick' } } };

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('a failover to a Redis replica mid-run (the primary SIGKILLed, REPLICAOF NO ONE on the replica, the cluster\'s one Redis address moved to it): the run completes, followers on both hubs end with every byte once and one complete', async () => {
  // The cluster follows one URL: a TCP proxy is that stable address, as a VIP or a DNS name would be.
  let proxy: TcpProxy | undefined;
  let primaryUrl = '';
  const cluster = await startCluster({
    pipelines: TICKING,
    workers: 1,
    env: { HUB_WORKER_TIMEOUT_MS: '15000' },
    redisUrl: async (url) => {
      primaryUrl = url;
      proxy = await startTcpProxy(Number(new URL(url).port));
      const through = new URL(url);
      through.port = String(proxy.port);
      return through.toString();
    },
  });
  const replica = await startRedis();
  const password = decodeURIComponent(new URL(primaryUrl).password);
  const admin = new Redis(replica.url, { lazyConnect: true, maxRetriesPerRequest: 3, commandTimeout: 5000 });
  const [a, b] = cluster.hubs;
  try {
    await admin.connect();
    await admin.config('SET', 'masterauth', password);
    await admin.replicaof('127.0.0.1', new URL(primaryUrl).port);
    await admin.config('SET', 'requirepass', password);
    await waitFor(async () => (await admin.info('replication')).includes('master_link_status:up'), 'the replica to follow the primary', 15_000);

    const projectId = await createProject(a, 'ticking');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const followers = [new ResettingFollower(await TestClient.connect(a.url), run.id), new ResettingFollower(await TestClient.connect(b.url), run.id)];
    const polled = pollFromZero(b, projectId, run.id);
    polled.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await followers[1].client.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'ticks through hub B', 20_000);

    const failedAt = Date.now();
    cluster.redis.signal('SIGKILL');
    await admin.replicaof('NO', 'ONE');
    proxy!.retarget(Number(new URL(replica.url).port));
    const switchMs = Date.now() - failedAt;

    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 60_000);
    assert.is(ended.status, 'completed', `the run went on (${ended.error_message})`);
    const raw = Buffer.from((await b.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    assert.is(raw.length, ended.log_size);
    const ticks = raw.toString().split('\n').filter((line) => line.startsWith('tick '));
    assert.equal(ticks, Array.from({ length: 80 }, (_, i) => `tick ${i} of run ${run.id}`), 'every tick once, from the first');
    for (const [index, follower] of followers.entries()) {
      await follower.client.waitFor((m) => m.type === 'complete' && m.run_id === run.id && follower.copy().completes.length > 0, `follower ${index}'s complete`, 30_000);
      const { bytes, completes } = follower.copy();
      assert.is(sha(bytes), sha(raw), `follower ${index} has the log`);
      assert.is(completes.length, 1, `follower ${index}: one complete`);
      assert.is(completes[0].next, raw.length);
      await follower.client.close();
    }
    const { bytes: viaHttp, failures } = await polled;
    assert.is(sha(viaHttp), sha(raw), 'the HTTP poller has the log');
    console.log(`  (HTTP poller: ${failures} failed requests; failover done in ${switchMs} ms; resets seen: ${followers.map((f) => f.resets).join(', ')}; the run completed ${Date.parse(ended.finished_at) - failedAt} ms after the primary died)`);
  } finally {
    admin.disconnect();
    await proxy?.close();
    await replica.stop();
    await cluster.stop();
  }
});

test.run();
