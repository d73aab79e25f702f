import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, sh, waitFor, waitForRun } from '../helpers/hub.js';
import { startCluster } from '../helpers/cluster.js';
import { fileGate } from '../helpers/fileGate.js';
import { TestClient } from '../helpers/wsClient.js';
import { bytesOfLines } from '../soak/follower.js';

test('a worker cut off from Redis (frozen) when a run ends gives its slot back after HUB_SHIP_DEADLINE_MS and records the end once Redis is back, the log whole', async () => {
  const gate = fileGate();
  const pipelines = {
    gated: { steps: [{ name: 'work', command: sh(`for i in $(seq 1 200); do echo "line $i"; done; ${gate.waitCommand}; echo last`) }], scopes: { all: 'work' } },
    quick: { steps: [{ name: 'work', command: sh('echo quick') }], scopes: { all: 'work' } },
  };
  const cluster = await startCluster({ pipelines, hubs: 1, workers: 1, env: { HUB_WORKER_SLOTS: '1', HUB_REDIS_TIMEOUT_MS: '500', HUB_SHIP_DEADLINE_MS: '2000' } });
  const [hub] = cluster.hubs;
  const [worker] = cluster.workers;
  try {
    const projectId = await createProject(hub, 'gated');
    const run = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const file = path.join(worker.logs, String(projectId), `${run.id}.log`);
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('line 200'), 'the first lines');
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await client.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.includes('line 200'), 'the follower at the live edge');
    cluster.redis.signal('SIGSTOP');
    gate.open();
    // The worker's only slot comes free while Redis is still frozen: another project's run is claimed and carried out.
    const other = await createProject(hub, 'quick');
    const next = (await hub.api('POST', `/api/projects/${other}/runs`, { scope: 'all' })).body;
    const otherFile = path.join(worker.logs, String(other), `${next.id}.log`);
    await waitFor(() => fs.existsSync(otherFile) && fs.readFileSync(otherFile, 'utf8').includes('quick'), 'the next run carried out on the freed slot', 15_000);
    // Not recorded as ended while its log is not where the hubs read it.
    assert.is((await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}`)).body.status, 'running');
    cluster.redis.signal('SIGCONT');
    const ended = await waitForRun(hub, projectId, run.id, ['completed', 'failed', 'cancelled'], 20_000);
    assert.is(ended.status, 'completed');
    const bytes = fs.readFileSync(file);
    assert.is(ended.log_size, bytes.length, "the size of the worker's file");
    const complete = await client.complete(run.id, 20_000);
    assert.is(complete.next, bytes.length);
    const copy = Buffer.concat(client.messages.filter((m) => m.type === 'lines' && m.run_id === run.id).map((m) => bytesOfLines(m as { lines: string[] })));
    assert.ok(copy.equals(bytes), 'the follower has the whole log');
    assert.is((await waitForRun(hub, other, next.id, ['completed', 'failed', 'cancelled'], 20_000)).status, 'completed');
    await client.close();
  } finally {
    cluster.redis.signal('SIGCONT');
    gate.remove();
    await cluster.stop();
  }
});

test('Redis frozen: /api/ready answers 503 naming redis within its deadline while /api/health stays 200; once Redis answers again, ready again', async () => {
  const cluster = await startCluster({ hubs: 1, workers: 0, env: { HUB_READY_TIMEOUT_MS: '500' } });
  const [hub] = cluster.hubs;
  try {
    const ready = await waitFor(async () => {
      const response = await hub.api('GET', '/api/ready');
      return response.status === 200 ? response.body : null;
    }, 'the hub to be ready');
    assert.equal(Object.keys(ready.checks).sort(), ['archive', 'database', 'listen', 'redis', 'serving']);
    cluster.redis.signal('SIGSTOP');
    const started = Date.now();
    const notReady = await hub.api('GET', '/api/ready');
    const took = Date.now() - started;
    assert.is(notReady.status, 503);
    assert.is(notReady.body.ok, false);
    assert.is(notReady.body.checks.redis.ok, false);
    assert.match(notReady.body.checks.redis.error, /redis/i);
    assert.ok(notReady.body.checks.database.ok && notReady.body.checks.listen.ok && notReady.body.checks.archive.ok, 'the other parts answer');
    console.log(`/api/ready answered 503 in ${took} ms (checks' deadline 500 ms)`);
    assert.ok(took < 2000, `answered within the check's deadline (${took} ms)`);
    assert.is((await hub.api('GET', '/api/health')).status, 200, 'alive all the same');
    cluster.redis.signal('SIGCONT');
    await waitFor(async () => (await hub.api('GET', '/api/ready')).status === 200, 'ready again', 10_000);
  } finally {
    cluster.redis.signal('SIGCONT');
    await cluster.stop();
  }
});

test.run();
