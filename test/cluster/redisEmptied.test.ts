import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCluster } from '../helpers/cluster.js';
import { pollFromZero } from '../helpers/httpPoller.js';
import { createProject, waitForRun } from '../helpers/hub.js';
import { ResettingFollower } from '../helpers/resettingFollower.js';
import { TestClient } from '../helpers/wsClient.js';

const TICKING = { ticking: { steps: [{ name: 'tick', command: ['sh', '-c', 'i=0; while [ $i -lt 80 ]; do echo "tick $i of run $HUB_RUN_ID"; sleep 0.1; i=$((i + 1)); done'] }], scopes: { all: 'tick' } } };

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('Redis killed and brought back empty mid-run: the worker ships the log again from 0, followers on both hubs are told log_reset and, subscribing again from 0, get every byte once and one complete', async () => {
  const cluster = await startCluster({ pipelines: TICKING, workers: 1, env: { HUB_WORKER_TIMEOUT_MS: '15000' } });
  const [a, b] = cluster.hubs;
  try {
    const projectId = await createProject(a, 'ticking');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const followers = [new ResettingFollower(await TestClient.connect(a.url), run.id), new ResettingFollower(await TestClient.connect(b.url), run.id)];
    const polled = pollFromZero(b, projectId, run.id);
    polled.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await followers[1].client.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'ticks through hub B', 20_000);

    const emptiedAt = Date.now();
    await cluster.redis.restart({ empty: true });
    const downMs = Date.now() - emptiedAt;

    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 60_000);
    assert.is(ended.status, 'completed', `the run went on (${ended.error_message})`);
    const raw = Buffer.from((await b.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    assert.is(raw.length, ended.log_size);
    const ticks = raw.toString().split('\n').filter((line) => line.startsWith('tick '));
    assert.equal(ticks, Array.from({ length: 80 }, (_, i) => `tick ${i} of run ${run.id}`), `every tick once, from the first (log starts ${JSON.stringify(raw.subarray(0, 80).toString())})`);
    for (const [index, follower] of followers.entries()) {
      await follower.client.waitFor((m) => m.type === 'complete' && m.run_id === run.id && follower.copy().completes.length > 0, `follower ${index}'s complete`, 30_000);
      const { bytes, completes } = follower.copy();
      assert.is(sha(bytes), sha(raw), `follower ${index} has the log`);
      assert.is(completes.length, 1, `follower ${index}: one complete`);
      assert.is(completes[0].next, raw.length);
      assert.ok(follower.resets <= 2, `follower ${index}: ${follower.resets} resets`);
      await follower.client.close();
    }
    const { bytes: viaHttp, failures } = await polled;
    assert.is(sha(viaHttp), sha(raw), 'the HTTP poller has the log');
    console.log(`  (HTTP poller: ${failures} failed requests; Redis down and back empty in ${downMs} ms; resets seen: ${followers.map((f) => f.resets).join(', ')}; the run completed ${Date.parse(ended.finished_at) - emptiedAt} ms after the kill)`);
  } finally {
    await cluster.stop();
  }
});

test('a follower that comes back at its last next while Redis has lost the stream and the worker has not shipped it again yet waits there, then gets the rest once (no invalid_offset); an HTTP poll there gets an empty page', async () => {
  const cluster = await startCluster({ pipelines: TICKING, hubs: 1, workers: 1, env: { HUB_WORKER_TIMEOUT_MS: '15000' } });
  const [hub] = cluster.hubs;
  try {
    const projectId = await createProject(hub, 'ticking');
    const run = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const first = await TestClient.connect(hub.url);
    first.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await first.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'ticks', 20_000);
    const { next } = first.linesOf(run.id, 0);
    await first.close();
    // The worker frozen (well within its 10 s allowance), so nothing ships the log again meanwhile.
    cluster.workers[0].process.kill('SIGSTOP');
    try {
      await cluster.redis.restart({ empty: true });
      const poll = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs?offset=${next}`);
      assert.is(poll.status, 200, `a poll at ${next} waits (${JSON.stringify(poll.body)})`);
      assert.equal([poll.body.offset, poll.body.next, poll.body.lines.length, poll.body.complete], [next, next, 0, false]);
      const back = await TestClient.connect(hub.url);
      back.send({ type: 'subscribe', run_id: run.id, offset: next });
      await back.waitFor((m) => m.type === 'subscribed' || m.type === 'error', 'an answer to the subscribe', 10_000);
      assert.not.ok(back.messages.some((m) => m.type === 'error'), `no error: ${JSON.stringify(back.messages)}`);
      cluster.workers[0].process.kill('SIGCONT');
      const complete = await back.complete(run.id, 60_000);
      const raw = Buffer.from((await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
      const rest = back.linesOf(run.id, next); // contiguous from its offset
      assert.is(rest.next, raw.length);
      assert.is(complete.next, raw.length);
      assert.is(sha(Buffer.concat([raw.subarray(0, next), Buffer.from(back.messages.filter((m) => m.type === 'lines').flatMap((m) => m.lines!).map((line) => `${line}\n`).join(''))])), sha(raw), 'the bytes before its offset and what it got after are the log');
      assert.ok(!back.messages.some((m) => m.type === 'error'), 'no error at all');
      await back.close();
    } finally {
      cluster.workers[0].process.kill('SIGCONT');
    }
  } finally {
    await cluster.stop();
  }
});

test.run();
