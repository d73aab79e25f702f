import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sqliteLocker } from '../helpers/sqliteLock.js';
import WebSocket from 'ws';
import { createProject, isAlive, nodeStep, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const paced = (count: number, everyMs: number) =>
  nodeStep(`let i = 0; const t = setInterval(() => { console.log('paced ' + (++i)); if (i === ${count}) clearInterval(t); }, ${everyMs});`);
const PIPELINES = { paced: { steps: [{ name: 'paced', command: paced(200, 10) }], scopes: { all: 'paced' } } };

test('SIGTERM: WebSockets close with 1001, the server exits in seconds, the runner goes on and is re-attached', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  const projectId = await createProject(hub, 'paced');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const client = await TestClient.connect(hub.url);
  client.send({ type: 'subscribe', run_id: body.id, offset: 0 });
  await client.waitFor((m) => m.type === 'lines' && m.lines!.includes('paced 10'), 'line 10');
  const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
  const started = Date.now();
  await hub.stop('SIGTERM');
  const took = Date.now() - started;
  assert.is(hub.process.exitCode, 0);
  assert.ok(took < 5000, `exited in ${took} ms`);
  assert.is(await closed, 1001);
  const state = JSON.parse(fs.readFileSync(path.join(hub.dir, 'logs', String(projectId), `${body.id}.json`), 'utf8'));
  assert.ok(state.status !== 'running' || isAlive(state.pid), 'the runner outlived the server');
  const again = await startHub({ pipelines: PIPELINES, dir: hub.dir });
  try {
    const run = await waitForRun(again, projectId, body.id, ['completed', 'failed'], 15_000);
    assert.is(run.status, 'completed');
  } finally {
    await again.stop();
  }
});

test('a log truncated while tailed: subscribers get a log_reset error, the server keeps running', async () => {
  const hub = await startHub({ pipelines: { slow: { steps: [{ name: 'slow', command: paced(400, 10) }], scopes: { all: 'slow' } } } });
  try {
    const projectId = await createProject(hub, 'slow');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: body.id, offset: 0 });
    await client.waitFor((m) => m.type === 'lines' && m.lines!.includes('paced 20'), 'line 20');
    fs.truncateSync(path.join(hub.dir, 'logs', String(projectId), `${body.id}.log`), 0);
    const reset = await client.waitFor((m) => m.type === 'error', 'the reset error');
    assert.is(reset.code, 'log_reset');
    assert.is(reset.run_id, body.id);
    const { lines } = client.linesOf(body.id, 0);
    assert.is(new Set(lines).size, lines.length, 'nothing delivered twice');
    assert.is((await hub.api('GET', '/api/health')).status, 200);
    client.send({ type: 'subscribe', run_id: body.id, offset: 0 });
    await client.complete(body.id, 15_000);
    await client.close();
  } finally {
    await hub.stop();
  }
});

test('a peer that stops answering pings is dropped by the heartbeat and its subscriptions freed', async () => {
  const hub = await startHub({ pipelines: PIPELINES, env: { HUB_WS_HEARTBEAT_MS: '200' } });
  try {
    const silent = new WebSocket(`${hub.url.replace('http', 'ws')}/ws`, { autoPong: false });
    await new Promise((resolve) => silent.once('open', resolve));
    silent.send(JSON.stringify({ type: 'subscribe', project_id: 1 }));
    const code = await new Promise<number>((resolve) => silent.once('close', resolve));
    assert.is(code, 1006, 'terminated, not closed politely');
    const healthy = await TestClient.connect(hub.url);
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.is(healthy.socket.readyState, WebSocket.OPEN, 'a peer that answers pings stays');
    await healthy.close();
  } finally {
    await hub.stop();
  }
});

test('a subscriber that reads nothing past HUB_WS_STALL_TIMEOUT_MS is dropped; it can resume from its offset', async () => {
  const hub = await startHub({
    env: { HUB_WS_STALL_TIMEOUT_MS: '500', HUB_WS_HIGH_WATER_BYTES: '16384' },
    pipelines: { burst: { steps: [{ name: 'b', command: nodeStep(`for (let i = 1; i <= 200000; i++) console.log('burst ' + i + ' ' + 'z'.repeat(80));`) }], scopes: { all: 'b' } } },
  });
  try {
    const projectId = await createProject(hub, 'burst');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, body.id, ['completed']);
    const slow = await TestClient.connect(hub.url);
    (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    slow.send({ type: 'subscribe', run_id: body.id, offset: 0 });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    await waitFor(() => slow.socket.readyState === WebSocket.CLOSED, 'the stalled connection to be closed', 10_000);
    const seen = slow.linesOf(body.id, 0);
    assert.ok(seen.lines.length < 200_000, `it was cut off (${seen.lines.length} lines)`);
    const resumed = await TestClient.connect(hub.url);
    resumed.send({ type: 'subscribe', run_id: body.id, offset: seen.next });
    await resumed.complete(body.id, 20_000);
    const all = [...seen.lines, ...resumed.linesOf(body.id, seen.next).lines].filter((l) => l.startsWith('burst '));
    assert.is(all.length, 200_000);
    assert.is(all[199_999].split(' ')[1], '200000');
    await resumed.close();
  } finally {
    await hub.stop();
  }
});

test('SQLite locked by another process: requests wait the busy timeout, then 503; nothing is corrupted', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  const locker = sqliteLocker(path.join(hub.dir, 'data', 'hub.sqlite'));
  const { exec } = locker;
  try {
    await exec('PRAGMA busy_timeout = 1000; BEGIN EXCLUSIVE');
    const started = Date.now();
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'busy-'));
    const blocked = await hub.api('POST', '/api/projects', { name: 'while locked', doc_root: docRoot, pipeline: 'paced' });
    assert.is(blocked.status, 503, JSON.stringify(blocked.body));
    assert.is(blocked.body.error.code, 'database_busy');
    assert.ok(Date.now() - started >= 4000, 'it waited for the lock first');
    assert.is((await hub.api('GET', '/api/health')).status, 200);
    await exec('COMMIT');
    const created = await hub.api('POST', '/api/projects', { name: 'while locked', doc_root: docRoot, pipeline: 'paced' });
    assert.is(created.status, 201);
    await exec('PRAGMA integrity_check');
  } finally {
    locker.close();
    await hub.stop();
  }
});

test.run();
