import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startWorker, TEST_LEASE_MS, type ClusterWorker } from '../helpers/cluster.js';
import { createProject, startHub, waitForRun, type TestHub } from '../helpers/hub.js';
import { pollFromZero } from '../helpers/httpPoller.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { TestClient } from '../helpers/wsClient.js';
import { bytesOfLines } from '../soak/follower.js';

/** Each way, on every connection of the slow parts: a 200 ms round trip, as between continents. */
const DELAY_MS = 100;
const TICKS = 60;
/** Each tick says when the step wrote it (ms, the step's own clock), so a follower can tell how late it came. */
const PIPELINES = {
  ticking: { steps: [{ name: 'tick', command: ['sh', '-c', `i=0; while [ $i -lt ${TICKS} ]; do echo "tick $i at $(date +%s%3N)"; sleep 0.1; i=$((i + 1)); done`] }], scopes: { all: 'tick' } },
};

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const copyOf = (client: TestClient, runId: number) =>
  Buffer.concat(client.messages.filter((m) => m.type === 'lines' && m.run_id === runId).map((m) => bytesOfLines(m as { lines: string[] })));

/** How late each tick line reached `client` (ms from its write to its frame's arrival). */
function tickLateness(client: TestClient): number[] {
  const late: number[] = [];
  client.socket.on('message', (data) => {
    const now = Date.now();
    const message = JSON.parse(String(data)) as { type: string; lines?: string[] };
    if (message.type !== 'lines') return;
    for (const line of message.lines!) {
      const written = /^tick \d+ at (\d+)$/.exec(line)?.[1];
      if (written) late.push(now - Number(written));
    }
  });
  return late;
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))];

const withPort = (url: string, port: number) => {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString();
};

test(`a worker and a hub whose every connection to PostgreSQL and Redis is ${DELAY_MS} ms slow each way, for a whole run: it completes once under a 5 s lease; followers on both hubs and an HTTP poller through the slow one each get every byte once, then one complete`, async () => {
  let postgres: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  const proxies: TcpProxy[] = [];
  const hubs: TestHub[] = [];
  let worker: ClusterWorker | undefined;
  try {
    postgres = await startPostgres();
    redis = await startRedis();
    const archive = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-archive-'));
    const env = { HUB_DATABASE_URL: await postgres.createDatabase(), HUB_REDIS_URL: redis.url, HUB_DEMO: '0', HUB_WORKER_TIMEOUT_MS: TEST_LEASE_MS, HUB_ARCHIVE_DIR: archive };
    const [slowPostgres, slowRedis] = [await startTcpProxy(Number(new URL(env.HUB_DATABASE_URL).port), { delayMs: DELAY_MS }), await startTcpProxy(Number(new URL(redis.url).port), { delayMs: DELAY_MS })];
    proxies.push(slowPostgres, slowRedis);
    const slow = { ...env, HUB_DATABASE_URL: withPort(env.HUB_DATABASE_URL, slowPostgres.port), HUB_REDIS_URL: withPort(redis.url, slowRedis.port) };

    // The link is as slow as it says: a query's round trip through it takes at least twice the delay.
    const probe = new pg.Client({ connectionString: slow.HUB_DATABASE_URL });
    await probe.connect();
    const asked = Date.now();
    await probe.query('SELECT 1');
    const roundTrip = Date.now() - asked;
    await probe.end();
    assert.ok(roundTrip >= 2 * DELAY_MS, `a query took ${roundTrip} ms through the slow link`);

    // Hub A near the servers; hub B and the only worker far from them.
    const a = await startHub({ pipelines: PIPELINES, env });
    const b = await startHub({ pipelines: PIPELINES, env: slow });
    hubs.push(a, b);
    worker = await startWorker(slow, 'w1');
    const projectId = await createProject(a, 'ticking');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const [viaA, viaB] = [await TestClient.connect(a.url), await TestClient.connect(b.url)];
    const lateness = [tickLateness(viaA), tickLateness(viaB)];
    for (const client of [viaA, viaB]) client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    const polled = pollFromZero(b, projectId, run.id);
    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 90_000);
    const completes = [await viaA.complete(run.id, 60_000), await viaB.complete(run.id, 60_000)];
    const poll = await polled;

    assert.is(ended.status, 'completed', `the run went on over the slow links (${ended.error_message})`);
    const raw = Buffer.from((await a.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    assert.is(raw.toString().split('\n').filter((line) => line.startsWith('tick ')).length, TICKS, 'every tick in the log once');
    for (const [name, client, complete] of [['A', viaA, completes[0]], ['B', viaB, completes[1]]] as const) {
      client.linesOf(run.id, 0); // contiguous: no gap, no overlap
      assert.is(sha(copyOf(client, run.id)), sha(raw), `the follower on hub ${name} has the log`);
      assert.is(complete.next, raw.length);
      assert.is(client.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1, `one complete on hub ${name}`);
      await client.close();
    }
    assert.is(sha(poll.bytes), sha(raw), 'the poller through hub B has the log');
    assert.ok(slowRedis.forwarded > raw.length, `the log went through the slow link (${slowRedis.forwarded} bytes)`);
    const [late, far] = lateness;
    // Lines reach hub A a ship and a slow append after their write (a ship is a round trip); hub B reads them over its slow link too.
    assert.ok(percentile(late, 50) >= DELAY_MS && percentile(far, 50) >= percentile(late, 50), `the slow links show: p50 ${percentile(late, 50)} ms on A, ${percentile(far, 50)} ms on B`);
    console.log(`  (a query's round trip ${roundTrip} ms through the slow link; ticks reached hub A's follower p50 ${percentile(late, 50)} / p99 ${percentile(late, 99)} ms after their write, hub B's p50 ${percentile(far, 50)} / p99 ${percentile(far, 99)} ms; ${poll.failures} failed polls; the run took ${Date.parse(ended.finished_at) - Date.parse(ended.started_at)} ms for ${TICKS / 10} s of ticks)`);
  } finally {
    worker?.process.kill('SIGKILL');
    for (const hub of hubs) await hub.stop();
    for (const proxy of proxies) await proxy.close();
    await redis?.stop();
    await postgres?.stop();
  }
});

test.run();
