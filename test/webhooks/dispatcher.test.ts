import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSqliteStore } from '../../server/store/sqlite/store.js';
import { WebhookDispatcher } from '../../server/webhooks/dispatcher.js';
import type { Run } from '../../server/wire.js';
import { waitFor } from '../helpers/hub.js';
import { sqliteLocker } from '../helpers/sqliteLock.js';

test('close() aborts a POST in flight: its delivery stays pending, untried, for whoever leases it next', async () => {
  const store = await openSqliteStore(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-dispatcher-')), 'hub.sqlite'));
  let requests = 0;
  let aborted = false;
  // A receiver that never answers: the POST is in flight until someone ends it.
  const server = http.createServer((request, response) => {
    requests++;
    request.resume();
    response.on('close', () => (aborted = !response.writableFinished));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dispatcher = new WebhookDispatcher(store.webhooks, store.projects, (run) => ({ id: run.id }) as Run, { publicUrl: () => 'http://hub', retryFirstMs: 50, retryMaxMs: 60_000, maxTries: 3, timeoutMs: 60_000 }, pino({ level: 'silent' }));
  try {
    const project = await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} });
    const hook = await store.webhooks.insert({ project_id: project.id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, secret: 's', events: ['run.failed'] });
    const run = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'failed', triggered_by: 'test', progress_total: 1, plan: '[]' });
    dispatcher.runChanged(run);
    await waitFor(() => requests === 1, 'the POST to reach the receiver');
    dispatcher.close();
    await waitFor(() => aborted, 'the POST to be aborted', 5000);
    const [delivery] = await store.webhooks.listDeliveries(hook.id, 10);
    assert.equal({ status: delivery.status, tries: delivery.tries }, { status: 'pending', tries: 0 });
  } finally {
    dispatcher.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});

test('the wait between tries stops growing at retryMaxMs: a receiver that fails seven times gets its eighth try within seconds, not after 4^6 × the first wait', async () => {
  const store = await openSqliteStore(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-dispatcher-')), 'hub.sqlite'));
  const tries: number[] = [];
  const server = http.createServer((request, response) => {
    tries.push(Date.now());
    request.resume().on('end', () => response.writeHead(tries.length < 8 ? 500 : 204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Uncapped, the 8th try would come 20 ms × (1 + 4 + … + 4^6) = 109 s after the first.
  const dispatcher = new WebhookDispatcher(store.webhooks, store.projects, (run) => ({ id: run.id }) as Run, { publicUrl: () => 'http://hub', retryFirstMs: 20, retryMaxMs: 200, maxTries: 8 }, pino({ level: 'silent' }));
  try {
    const project = await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} });
    const hook = await store.webhooks.insert({ project_id: project.id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, secret: 's', events: ['run.failed'] });
    const run = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'failed', triggered_by: 'test', progress_total: 1, plan: '[]' });
    dispatcher.runChanged(run);
    await waitFor(async () => (await store.webhooks.listDeliveries(hook.id, 10))[0]?.status === 'delivered', 'the eighth try to deliver it', 20_000);
    assert.is(tries.length, 8);
  } finally {
    dispatcher.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});

test('events a killed hub never recorded are recorded at the next start even while the database refuses writes for a while (a lock held past the busy wait): asked again, not given up', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-dispatcher-')), 'hub.sqlite');
  const store = await openSqliteStore(file);
  const server = http.createServer((request, response) => request.resume().on('end', () => response.writeHead(204).end()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
  const dispatcher = new WebhookDispatcher(store.webhooks, store.projects, (run) => ({ id: run.id }) as Run, { publicUrl: () => 'http://hub', retryFirstMs: 50, retryMaxMs: 1000, maxTries: 3 }, log);
  const locker = sqliteLocker(file);
  try {
    const project = await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} });
    const hook = await store.webhooks.insert({ project_id: project.id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, secret: 's', events: ['run.failed'] });
    // Two runs ended after the webhook was made, their deliveries never recorded (the hub was killed).
    for (let i = 0; i < 2; i++) {
      const run = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'running', triggered_by: 'test', progress_total: 1, plan: '[]' });
      await store.runs.settle(run.id, { status: 'failed', finished_at: new Date(Date.now() + 1000).toISOString() });
    }
    // Another process holds the database while the restarted hub looks for them.
    await locker.exec('BEGIN EXCLUSIVE');
    const recovered = dispatcher.recoverMissed(store.runs, 24 * 3600_000);
    await waitFor(() => warnings.length > 0, 'the store to refuse (after its busy wait)', 20_000);
    await locker.exec('COMMIT');
    await recovered;
    await waitFor(async () => {
      const deliveries = await store.webhooks.listDeliveries(hook.id, 10);
      return deliveries.length === 2 && deliveries.every((delivery) => delivery.status === 'delivered');
    }, 'both events to be recorded and delivered', 20_000);
  } finally {
    dispatcher.close();
    locker.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});


test('a hub whose clock is 30 s ahead does not take over a delivery another hub still holds: leases are reckoned by the store\'s clock, so the event is POSTed once per try, not twice', async () => {
  const store = await openSqliteStore(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-dispatcher-')), 'hub.sqlite'));
  const tries: number[] = [];
  // The first try fails: the holder keeps the lease over its wait (2 s) plus 3 × its timeout (1 s).
  const server = http.createServer((request, response) => {
    tries.push(Date.now());
    request.resume().on('end', () => response.writeHead(tries.length === 1 ? 500 : 204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const options = { publicUrl: () => 'http://hub', retryFirstMs: 2000, retryMaxMs: 2000, maxTries: 3, timeoutMs: 1000 };
  const holder = new WebhookDispatcher(store.webhooks, store.projects, (run) => ({ id: run.id }) as Run, options, pino({ level: 'silent' }));
  const skewed = new WebhookDispatcher(store.webhooks, store.projects, (run) => ({ id: run.id }) as Run, { ...options, now: () => Date.now() + 30_000 }, pino({ level: 'silent' }));
  try {
    const project = await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} });
    const hook = await store.webhooks.insert({ project_id: project.id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, secret: 's', events: ['run.failed'] });
    const run = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'failed', triggered_by: 'test', progress_total: 1, plan: '[]' });
    holder.runChanged(run);
    await waitFor(async () => (await store.webhooks.listDeliveries(hook.id, 10))[0]?.tries === 1, 'the first try to be recorded');
    // By its own clock the holder's lease ran out 25 s ago; by the store's it has 5 s to go.
    await skewed.takeOverDue();
    await waitFor(async () => (await store.webhooks.listDeliveries(hook.id, 10))[0]?.status === 'delivered', 'the holder\'s second try to deliver it', 10_000);
    await skewed.takeOverDue();
    assert.is(tries.length, 2, 'one POST per try');
    assert.ok(tries[1] - tries[0] >= 1900, `the second try came after the holder's wait, not from a take-over (${tries[1] - tries[0]} ms)`);
  } finally {
    holder.close();
    skewed.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});

test.run();
