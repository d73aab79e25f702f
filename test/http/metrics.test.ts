import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const PIPELINES = {
  quick: { steps: [{ name: 'q', command: ['sh', '-c', 'echo one; echo two'] }], scopes: { all: 'q' } },
  long: { steps: [{ name: 'wait', command: ['sh', '-c', 'echo waiting; sleep 60'] }], scopes: { all: 'wait' } },
  // 40 MiB at once: a subscriber that stops reading falls over its high-water mark
  flood: { steps: [{ name: 'f', command: nodeStep(`const line = 'x'.repeat(1023) + '\\n'; let left = 40 * 1024; (function go() { while (left > 0) { left--; if (!process.stdout.write(line)) return process.stdout.once('drain', go); } })();`) }], scopes: { all: 'f' } },
};

/** The value of one sample (`name{labels} value`) in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('GET /metrics: runs by status, queue, active runs, sockets, subscriptions, frames and bytes sent, paused subscribers, process and event loop', async () => {
  const hub = await startHub({ pipelines: PIPELINES, env: { HUB_WS_HIGH_WATER_BYTES: '65536' } });
  try {
    const read = async () => {
      const response = await fetch(`${hub.url}/metrics`);
      assert.is(response.status, 200);
      assert.match(response.headers.get('content-type')!, 'text/plain');
      return response.text();
    };
    const quick = await createProject(hub, 'quick');
    const { body: done } = await hub.api('POST', `/api/projects/${quick}/runs`, { scope: 'all' });
    await waitForRun(hub, quick, done.id, ['completed']);
    const long = await createProject(hub, 'long');
    const { body: running } = await hub.api('POST', `/api/projects/${long}/runs`, { scope: 'all' });
    await hub.api('POST', `/api/projects/${long}/runs`, { scope: 'all', if_busy: 'queue' });
    await waitForRun(hub, long, running.id, ['running']);

    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: done.id, offset: 0 });
    client.send({ type: 'subscribe', run_id: running.id, offset: 0 });
    client.send({ type: 'subscribe', project_id: long });
    await client.complete(done.id);
    await client.waitFor((m) => m.type === 'lines' && m.run_id === running.id, 'the running run\'s lines');
    // The project subscription is the connection's third message: its answer, not the run's lines, says it is there.
    await client.waitFor((m) => m.type === 'subscribed' && (m as { project_id?: number }).project_id === long, 'the project subscription');
    const text = await read();
    assert.is(sample(text, 'hub_runs{status="completed"}'), 1);
    assert.is(sample(text, 'hub_runs{status="running"}'), 1);
    assert.is(sample(text, 'hub_runs{status="pending"}'), 1);
    assert.is(sample(text, 'hub_queue_length'), 1);
    assert.is(sample(text, 'hub_active_runs'), 1);
    assert.is(sample(text, 'hub_websocket_connections'), 1);
    assert.is(sample(text, 'hub_subscriptions{kind="run"}'), 1, 'the finished run\'s subscription ended with its complete');
    assert.is(sample(text, 'hub_subscriptions{kind="project"}'), 1);
    assert.is(sample(text, 'hub_frames_sent_total{transport="ws"}'), client.messages.length);
    const bytes = client.messages.reduce((sum, m) => sum + Buffer.byteLength(JSON.stringify(m)), 0);
    assert.is(sample(text, 'hub_bytes_sent_total{transport="ws"}'), bytes);
    assert.is(sample(text, 'hub_paused_subscribers'), 0);
    assert.ok(sample(text, 'nodejs_eventloop_lag_p99_seconds')! >= 0, 'event-loop delay');
    assert.ok(sample(text, 'process_resident_memory_bytes')! > 0, 'process metrics');

    // A subscriber that stops reading a 40 MiB log is paused.
    const flood = await createProject(hub, 'flood');
    const { body: big } = await hub.api('POST', `/api/projects/${flood}/runs`, { scope: 'all' });
    await waitForRun(hub, flood, big.id, ['completed'], 30_000);
    const stalled = await TestClient.connect(hub.url);
    (stalled.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    stalled.send({ type: 'subscribe', run_id: big.id, offset: 0 });
    await waitFor(async () => sample(await read(), 'hub_paused_subscribers') === 1, 'one paused subscriber in the metrics');
    stalled.socket.terminate();
    await client.close();
  } finally {
    await hub.stop();
  }
});

test('with HUB_TOKEN, /metrics needs it', async () => {
  const token = 'metrics-token-0123456789';
  const hub = await startHub({ env: { HUB_TOKEN: token } });
  try {
    assert.is((await fetch(`${hub.url}/metrics`)).status, 401);
    const allowed = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.is(allowed.status, 200);
    assert.match(await allowed.text(), 'hub_runs{status="completed"}');
  } finally {
    await hub.stop();
  }
});

test.run();
