import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, sh, waitFor } from '../helpers/hub.js';
import { startCluster } from '../helpers/cluster.js';
import { fileGate } from '../helpers/fileGate.js';
import { TestClient } from '../helpers/wsClient.js';

/** Records the events a webhook receives. */
async function startReceiver() {
  const events: string[] = [];
  const server = http.createServer((request, response) => {
    events.push(String(request.headers['x-hub-event']));
    request.resume().on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { events, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() };
}

/** Ends every client connection to the server (a failover, a network blip, a restarted pooler); answers how many. */
async function terminateAllBackends(admin: pg.ClientConfig): Promise<number> {
  const client = new pg.Client(admin);
  await client.connect();
  try {
    const { rows } = await client.query<{ count: number }>("SELECT count(pg_terminate_backend(pid))::int AS count FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'");
    return rows[0].count;
  } finally {
    await client.end();
  }
}

test('every database connection terminated mid-run: a follower on the other hub still gets complete, the run event arrives and the webhook is delivered', async () => {
  const gate = fileGate();
  const cluster = await startCluster({ pipelines: { gated: { steps: [{ name: 'work', command: sh(`echo one; echo two; ${gate.waitCommand}; echo three`) }], scopes: { all: 'work' } } }, workers: 1, env: { HUB_RESYNC_MS: '600000' } });
  const [a, b] = cluster.hubs;
  const receiver = await startReceiver();
  try {
    const projectId = await createProject(a, 'gated');
    assert.is((await b.api('POST', `/api/projects/${projectId}/webhooks`, { url: receiver.url, secret: 's' })).status, 201);
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const client = await TestClient.connect(b.url);
    client.send({ type: 'subscribe', project_id: projectId });
    client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await client.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.includes('two'), 'the first lines', 15_000);
    await waitFor(() => receiver.events.includes('run.started'), 'run.started delivered');

    // Both hubs' LISTEN connections and every pooled one, the worker's too.
    assert.ok((await terminateAllBackends(cluster.postgres.admin)) >= 4, 'the hubs and the worker were connected');
    gate.open();
    const ended = Date.now();

    // No backstop poll in this test (HUB_RESYNC_MS is 10 minutes): LISTEN itself comes back.
    const complete = await client.complete(run.id, 20_000);
    console.log(`complete ${Date.now() - ended} ms after the step was let go`);
    assert.is(complete.status, 'completed');
    assert.equal(client.linesOf(run.id, 0).lines.filter((line) => !line.startsWith('[hub]')), ['one', 'two', 'three'], 'every line, in order');
    await client.waitFor((m) => m.type === 'run' && (m.run as { id: number; status: string }).id === run.id && (m.run as { status: string }).status === 'completed', 'the run event of its end', 10_000);
    await waitFor(() => receiver.events.includes('run.completed'), 'run.completed delivered', 20_000);
    await client.close();
  } finally {
    receiver.close();
    gate.remove();
    await cluster.stop();
  }
});

test('a change no hub was told of (its notification lost) reaches followers by the backstop re-read within HUB_RESYNC_MS', async () => {
  const cluster = await startCluster({ pipelines: { gated: { steps: [{ name: 'work', command: sh('echo never') }], scopes: { all: 'work' } } }, workers: 0, env: { HUB_RESYNC_MS: '500' } });
  const [a, b] = cluster.hubs;
  try {
    const projectId = await createProject(a, 'gated');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const client = await TestClient.connect(b.url);
    client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await client.waitFor((m) => m.type === 'subscribed' && m.run_id === run.id, 'subscribed');
    // Ended behind the hubs' backs: no pg_notify (as when the notifying connection broke).
    const admin = new pg.Client({ ...cluster.postgres.admin, database: new URL(cluster.env.HUB_DATABASE_URL).pathname.slice(1) });
    await admin.connect();
    await admin.query("UPDATE hub.runs SET status = 'cancelled', finished_at = $2, error_message = 'ended elsewhere' WHERE id = $1", [run.id, new Date().toISOString()]);
    await admin.end();
    const ended = Date.now();
    const complete = await client.complete(run.id, 10_000);
    console.log(`complete ${Date.now() - ended} ms after the change (HUB_RESYNC_MS 500)`);
    assert.equal([complete.status, complete.error_message], ['cancelled', 'ended elsewhere']);
    await client.close();
  } finally {
    await cluster.stop();
  }
});

test.run();
