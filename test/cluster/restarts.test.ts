import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCluster } from '../helpers/cluster.js';
import { createProject, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';
import { bytesOfLines } from '../soak/follower.js';

/** Long enough that a restart on a loaded machine does not cost the run its lease (2/3 of it: 10 s). */
const LEASE_MS = '15000';
const TICKING = { ticking: { steps: [{ name: 'tick', command: ['sh', '-c', 'i=0; while [ $i -lt 80 ]; do echo "tick $i of run $HUB_RUN_ID"; sleep 0.1; i=$((i + 1)); done'] }], scopes: { all: 'tick' } } };

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('PostgreSQL restarted mid-run (fast shutdown: every connection dropped, back on its port): the run goes on and completes, followers on both hubs get every byte once and one complete, each webhook event arrives under one delivery id', async () => {
  const cluster = await startCluster({ pipelines: TICKING, workers: 1, env: { HUB_WORKER_TIMEOUT_MS: LEASE_MS } });
  const [a, b] = cluster.hubs;
  const received: { event: string; delivery: string }[] = [];
  const receiver = http.createServer((request, response) => {
    received.push({ event: String(request.headers['x-hub-event']), delivery: String(request.headers['x-hub-delivery']) });
    request.resume().on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const projectId = await createProject(a, 'ticking');
    await a.api('POST', `/api/projects/${projectId}/webhooks`, { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, secret: 's' });
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const followers = [await TestClient.connect(a.url), await TestClient.connect(b.url)];
    for (const follower of followers) follower.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await followers[1].waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'ticks through hub B', 20_000);

    const restartedAt = Date.now();
    await cluster.postgres.restart();
    const downMs = Date.now() - restartedAt;

    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 60_000);
    assert.is(ended.status, 'completed', `the run went on (${ended.error_message})`);
    const raw = Buffer.from((await b.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    assert.is(raw.length, ended.log_size);
    for (const [index, follower] of followers.entries()) {
      const complete = await follower.complete(run.id, 30_000);
      follower.linesOf(run.id, 0); // contiguous: no gap, no overlap
      const copy = Buffer.concat(follower.messages.filter((m) => m.type === 'lines' && m.run_id === run.id).map((m) => bytesOfLines(m as { lines: string[] })));
      assert.is(sha(copy), sha(raw), `follower ${index} has the log`);
      assert.is(complete.next, raw.length);
      assert.is(follower.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1, `follower ${index}: one complete`);
      await follower.close();
    }
    await waitFor(() => ['run.started', 'run.completed'].every((event) => received.some((post) => post.event === event)), 'both webhook events', 30_000);
    for (const event of ['run.started', 'run.completed']) {
      assert.is(new Set(received.filter((post) => post.event === event).map((post) => post.delivery)).size, 1, `${event} under one delivery id`);
    }
    console.log(`  (PostgreSQL down and back in ${downMs} ms; the run completed ${Date.parse(ended.finished_at) - restartedAt} ms after the restart began)`);
  } finally {
    receiver.closeAllConnections();
    receiver.close();
    await cluster.stop();
  }
});

test.run();
