import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { createProject, isAlive, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { setUp } from '../helpers/setup.js';
import { sqliteLocker } from '../helpers/sqliteLock.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A local receiver; `answer` decides each response's status (by how many it has received), and may make it wait. */
async function startReceiver(answer: (count: number) => number | Promise<number> = () => 204) {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      Promise.resolve(answer(received.length)).then((status) => response.writeHead(status).end(), () => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, received, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Removes a run's recorded deliveries of one event, as if they had never been recorded. */
function deleteDeliveries(databaseFile: string, runId: number, event: string): Promise<void> {
  const db = new sqlite3.Database(databaseFile);
  return new Promise<void>((resolve, reject) => {
    db.run('DELETE FROM webhook_deliveries WHERE run_id = ? AND event = ?', [runId, event], (error) => (error ? reject(error) : resolve()));
  }).finally(() => new Promise((resolve) => db.close(resolve)));
}

const SECRET = 'a webhook secret';
const PIPELINES = {
  quick: { steps: [{ name: 'q', command: ['sh', '-c', 'echo hi'] }], scopes: { all: 'q' } },
  failing: { steps: [{ name: 'bad', command: ['sh', '-c', 'exit 4'] }], scopes: { all: 'bad' } },
};

const webhooks = suite<{ hub: TestHub }>('webhooks');
setUp(webhooks, async (context) => {
  context.hub = await startHub({ pipelines: PIPELINES, env: { HUB_WEBHOOK_RETRY_MS: '50', HUB_WEBHOOK_TRIES: '3', HUB_PUBLIC_URL: 'https://hub.example' } });
});
webhooks.after(async ({ hub }) => hub?.stop());

const hooksOf = (projectId: number) => `/api/projects/${projectId}/webhooks`;

webhooks('run events are POSTed once each, as JSON signed with X-Hub-Signature-256; deliveries are listed; the secret is never shown', async ({ hub }) => {
  const receiver = await startReceiver();
  try {
    const projectId = await createProject(hub, 'quick');
    const created = await hub.api('POST', hooksOf(projectId), { url: receiver.url, secret: SECRET, events: ['run.started', 'run.completed'] });
    assert.is(created.status, 201);
    assert.equal(Object.keys(created.body).sort(), ['created_at', 'events', 'id', 'project_id', 'url']);
    const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, run.id, ['completed']);
    await waitFor(() => receiver.received.length === 2, 'two deliveries');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.is(receiver.received.length, 2, 'each event once');
    const byEvent: Record<string, Received> = Object.fromEntries(receiver.received.map((r) => [r.headers['x-hub-event'], r]));
    for (const [event, delivery] of Object.entries(byEvent)) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(delivery.body).digest('hex')}`;
      assert.is(delivery.headers['x-hub-signature-256'], expected, `signature of ${event}`);
      assert.is(delivery.headers['content-type'], 'application/json');
    }
    const completed = JSON.parse(byEvent['run.completed'].body);
    assert.is(completed.event, 'run.completed');
    assert.is(completed.project.id, projectId);
    assert.is(completed.run.id, run.id);
    assert.is(completed.run.status, 'completed');
    assert.is(completed.url, `https://hub.example/#/projects/${projectId}/runs/${run.id}`);
    assert.is(JSON.parse(byEvent['run.started'].body).run.status, 'running');
    const deliveries = (await hub.api('GET', `${hooksOf(projectId)}/${created.body.id}/deliveries`)).body;
    assert.is(deliveries.length, 2);
    for (const delivery of deliveries) {
      assert.is(delivery.status, 'delivered');
      assert.is(delivery.tries, 1);
      assert.is(delivery.last_status, 204);
    }
    const listed = (await hub.api('GET', hooksOf(projectId))).body;
    assert.not.match(JSON.stringify(listed), SECRET);
    assert.is((await hub.api('DELETE', `${hooksOf(projectId)}/${created.body.id}`)).status, 204);
    assert.equal((await hub.api('GET', hooksOf(projectId))).body, []);
  } finally {
    await receiver.close();
  }
});

webhooks('a failing receiver is retried with backoff until it answers 2xx; one that keeps failing ends failed after HUB_WEBHOOK_TRIES', async ({ hub }) => {
  const flaky = await startReceiver((count) => (count <= 2 ? 500 : 200));
  const down = await startReceiver(() => 503);
  try {
    const projectId = await createProject(hub, 'failing');
    const a = (await hub.api('POST', hooksOf(projectId), { url: flaky.url, secret: SECRET, events: ['run.failed'] })).body;
    const b = (await hub.api('POST', hooksOf(projectId), { url: down.url, secret: SECRET, events: ['run.failed'] })).body;
    const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, run.id, ['failed']);
    const final = async (id: number) => (await hub.api('GET', `${hooksOf(projectId)}/${id}/deliveries`)).body[0];
    const recovered = await waitFor(async () => {
      const delivery = await final(a.id);
      return delivery?.status === 'delivered' ? delivery : null;
    }, 'the flaky receiver to get it');
    assert.is(recovered.tries, 3);
    assert.is(flaky.received.length, 3);
    assert.is(JSON.parse(flaky.received[2].body).run.exit_code, 4);
    const failed = await waitFor(async () => {
      const delivery = await final(b.id);
      return delivery?.status === 'failed' ? delivery : null;
    }, 'the down receiver\'s delivery to fail');
    assert.is(failed.tries, 3);
    assert.is(failed.last_status, 503);
    assert.is(failed.last_error, 'HTTP 503');
    assert.is(down.received.length, 3);
    // Nothing listening at all: the error names why.
    const closed = await startReceiver();
    await closed.close();
    const nowhere = (await hub.api('POST', hooksOf(projectId), { url: closed.url, secret: SECRET, events: ['run.failed'] })).body;
    const { body: again } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, again.id, ['failed']);
    const refused = await waitFor(async () => {
      const delivery = await final(nowhere.id);
      return delivery?.status === 'failed' ? delivery : null;
    }, 'the delivery to nowhere to fail');
    assert.is(refused.last_status, null);
    assert.is(refused.last_error, 'ECONNREFUSED');
  } finally {
    await Promise.all([flaky.close(), down.close()]);
  }
});

webhooks('bad webhook input is 400 naming the field; another project\'s webhook is 404', async ({ hub }) => {
  const projectId = await createProject(hub, 'quick');
  const cases: [unknown, string, string][] = [
    [{ url: 'ftp://example.com/x', secret: 's' }, 'invalid_field', 'url'],
    [{ url: 'http://user:pw@example.com/', secret: 's' }, 'invalid_field', 'url'],
    [{ url: 'not a url', secret: 's' }, 'invalid_field', 'url'],
    [{ url: 'http://example.com/' }, 'missing_field', 'secret'],
    [{ url: 'http://example.com/', secret: 's', events: ['run.exploded'] }, 'invalid_field', 'events'],
    [{ url: 'http://example.com/', secret: 's', events: [] }, 'invalid_field', 'events'],
    [{ url: 'http://example.com/', secret: 's', headers: {} }, 'unknown_field', 'headers'],
  ];
  for (const [body, code, field] of cases) {
    const response = await hub.api('POST', hooksOf(projectId), body);
    assert.is(response.status, 400, JSON.stringify(body));
    assert.is(response.body.error.code, code, JSON.stringify(body));
    assert.is(response.body.error.field, field, JSON.stringify(body));
  }
  const other = await createProject(hub, 'quick');
  const hook = (await hub.api('POST', hooksOf(other), { url: 'http://example.com/', secret: 's' })).body;
  assert.equal(hook.events, ['run.started', 'run.completed', 'run.failed', 'run.cancelled'], 'every event by default');
  assert.is((await hub.api('DELETE', `${hooksOf(projectId)}/${hook.id}`)).status, 404);
  assert.is((await hub.api('GET', `${hooksOf(projectId)}/${hook.id}/deliveries`)).status, 404);
});

webhooks('a delivery whose outcome meets a locked database is recorded once the lock goes, and the hub stays up', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  let answer = (_status: number) => {};
  const answered = new Promise<number>((resolve) => (answer = resolve));
  const receiver = await startReceiver(() => answered);
  const locker = sqliteLocker(path.join(hub.dir, 'data', 'hub.sqlite'));
  try {
    const projectId = await createProject(hub, 'quick');
    const hook = (await hub.api('POST', hooksOf(projectId), { url: receiver.url, secret: SECRET, events: ['run.completed'] })).body;
    await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitFor(() => receiver.received.length === 1, 'the delivery to be under way');
    // Another process holds the write lock longer than the hub's busy wait (5 s) while the receiver answers.
    await locker.exec('BEGIN EXCLUSIVE');
    answer(200);
    await waitFor(() => hub.output().includes('outcome failed; trying again') || !isAlive(hub.process.pid!), 'the outcome\'s write to fail', 15_000);
    assert.ok(isAlive(hub.process.pid!), `the hub died:\n${hub.output()}`);
    await locker.exec('COMMIT');
    const recorded = await waitFor(async () => {
      const delivery = (await hub.api('GET', `${hooksOf(projectId)}/${hook.id}/deliveries`)).body[0];
      return delivery?.status === 'delivered' ? delivery : null;
    }, 'the delivery to be recorded');
    assert.is(recorded.tries, 1);
    assert.is(recorded.last_status, 200);
    assert.is(receiver.received.length, 1, 'sent once');
    assert.ok(isAlive(hub.process.pid!), 'the hub is up');
  } finally {
    answer(200);
    locker.close();
    await receiver.close();
    await hub.stop();
  }
});

webhooks('a deleted webhook is not tried again: its waiting retries stop, another webhook\'s go on', async () => {
  // The deleted webhook's retry falls due RETRY_MS after its first try; the kept one's first answer is
  // held until the DELETE is in, so the kept one's retry falls due after the deleted one's would have.
  const RETRY_MS = 4000;
  const hub = await startHub({ pipelines: PIPELINES, env: { HUB_WEBHOOK_RETRY_MS: String(RETRY_MS), HUB_WEBHOOK_TRIES: '2' } });
  let openGate = () => {};
  const gate = new Promise<number>((resolve) => (openGate = () => resolve(500)));
  const deleted = await startReceiver(() => 500);
  const kept = await startReceiver((count) => (count === 1 ? gate : 500));
  try {
    const projectId = await createProject(hub, 'failing');
    const gone = (await hub.api('POST', hooksOf(projectId), { url: deleted.url, secret: SECRET, events: ['run.failed'] })).body;
    const other = (await hub.api('POST', hooksOf(projectId), { url: kept.url, secret: SECRET, events: ['run.failed'] })).body;
    await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitFor(() => deleted.received.length === 1 && kept.received.length === 1, 'the first tries');
    const askedToDelete = Date.now();
    assert.is((await hub.api('DELETE', `${hooksOf(projectId)}/${gone.id}`)).status, 204);
    assert.ok(Date.now() - askedToDelete < RETRY_MS / 2, 'the DELETE came in well before the deleted webhook\'s retry was due');
    openGate();
    await waitFor(async () => (await hub.api('GET', `${hooksOf(projectId)}/${other.id}/deliveries`)).body[0]?.status === 'failed', 'the kept webhook\'s retry', 30_000);
    assert.is(kept.received.length, 2);
    assert.is((await hub.api('GET', `${hooksOf(projectId)}/${gone.id}/deliveries`)).status, 404, 'the deleted webhook is gone (its deliveries go with it: the store contract checks the cascade)');
    assert.is(deleted.received.length, 1, 'the deleted webhook got no retry');
  } finally {
    openGate();
    await Promise.all([deleted.close(), kept.close()]);
    await hub.stop();
  }
});

webhooks('an event whose deliveries a killed hub never recorded is delivered after the restart; one recorded is not sent again, and a webhook made after the event gets nothing', async () => {
  const receiver = await startReceiver();
  const later = await startReceiver();
  const first = await startHub({ pipelines: PIPELINES, env: { HUB_WEBHOOK_RETRY_MS: '50' } });
  let second: TestHub | undefined;
  try {
    const projectId = await createProject(first, 'quick');
    const hook = (await first.api('POST', hooksOf(projectId), { url: receiver.url, secret: SECRET, events: ['run.started', 'run.completed'] })).body;
    const { body: run } = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(first, projectId, run.id, ['completed']);
    await waitFor(() => receiver.received.length === 2, 'both events delivered');
    const laterHook = (await first.api('POST', hooksOf(projectId), { url: later.url, secret: SECRET, events: ['run.started', 'run.completed'] })).body;
    await first.stop('SIGKILL');
    // What a hub killed between recording the run's end and recording its deliveries leaves.
    await deleteDeliveries(path.join(first.dir, 'data', 'hub.sqlite'), run.id, 'run.completed');
    second = await startHub({ pipelines: PIPELINES, env: { HUB_WEBHOOK_RETRY_MS: '50' }, dir: first.dir });
    await waitFor(() => receiver.received.length === 3, 'the event never recorded, delivered after the restart');
    const events = receiver.received.map((r) => r.headers['x-hub-event']);
    assert.equal(events.slice().sort(), ['run.completed', 'run.completed', 'run.started'], 'run.started, recorded, is not sent again');
    assert.is(JSON.parse(receiver.received[2].body).run.status, 'completed');
    // The recovered event was recorded for the webhooks that existed then: the later one has no delivery.
    assert.is((await second.api('GET', `${hooksOf(projectId)}/${hook.id}/deliveries`)).body.length, 2);
    assert.equal((await second.api('GET', `${hooksOf(projectId)}/${laterHook.id}/deliveries`)).body, [], 'a webhook made after the events');
    assert.is(later.received.length, 0);
  } finally {
    await second?.stop();
    await receiver.close();
    await later.close();
  }
});

webhooks.run();
