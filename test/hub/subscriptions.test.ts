import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, logFileOf, nodeStep, openHandles, sh, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const PIPELINES = {
  quick: { steps: [{ name: 'q', command: sh('for i in 1 2 3; do echo "quick $i"; done') }], scopes: { all: 'q' } },
  // 50 lines, then a line still being written, then waits: a running run with a small log.
  held: { steps: [{ name: 'h', command: nodeStep(`for (let i = 1; i <= 50; i++) console.log('held ' + i); process.stdout.write('partial'); setTimeout(() => {}, 60000);`) }], scopes: { all: 'h' } },
  lines: { steps: [{ name: 'l', command: nodeStep(`for (let i = 1; i <= 1000; i++) console.log('line ' + i + ' ' + 'é'.repeat(i % 7));`) }], scopes: { all: 'l' } },
};

async function finishedRuns(hub: Awaited<ReturnType<typeof startHub>>, pipeline: string, count: number) {
  const projectId = await createProject(hub, pipeline);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push((await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body.id);
  for (const id of ids) await waitForRun(hub, projectId, id, ['completed']);
  return { projectId, ids };
}

test('a finished subscription (complete) no longer counts against HUB_WS_MAX_SUBSCRIPTIONS', async () => {
  const hub = await startHub({ pipelines: PIPELINES, env: { HUB_WS_MAX_SUBSCRIPTIONS: '2' } });
  try {
    const { ids } = await finishedRuns(hub, 'quick', 5);
    const client = await TestClient.connect(hub.url);
    for (const id of ids) {
      client.send({ type: 'subscribe', run_id: id, offset: 0 });
      await client.complete(id);
    }
    assert.is(client.messages.filter((m) => m.type === 'error').length, 0, JSON.stringify(client.messages.filter((m) => m.type === 'error')));
    await client.close();
  } finally {
    await hub.stop();
  }
});

test('subscribe with tail N on a running run with a small log starts at its last N complete lines', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  try {
    const projectId = await createProject(hub, 'held');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const file = logFileOf(hub, projectId, body.id);
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('partial'), 'the 50 lines');
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: body.id, tail: 5 });
    const subscribed = await client.waitFor((m) => m.type === 'subscribed', 'subscribed');
    const text = fs.readFileSync(file, 'utf8');
    assert.is(subscribed.offset, Buffer.byteLength(text.slice(0, text.indexOf('held 46\n'))));
    await client.waitFor(() => client.linesOf(body.id).lines.includes('held 50'), 'the last line');
    assert.equal(client.linesOf(body.id, subscribed.offset).lines, ['held 46', 'held 47', 'held 48', 'held 49', 'held 50']);
    // A second client on the same reader (now live) gets the same answer.
    const second = await TestClient.connect(hub.url);
    second.send({ type: 'subscribe', run_id: body.id, tail: 2 });
    await second.waitFor(() => second.linesOf(body.id).lines.includes('held 50'), 'the last line, again');
    assert.equal(second.linesOf(body.id).lines, ['held 49', 'held 50']);
    await hub.api('DELETE', `/api/projects/${projectId}/runs/${body.id}`);
    await client.complete(body.id);
    await Promise.all([client.close(), second.close()]);
  } finally {
    await hub.stop();
  }
});

test('subscribe to a project that does not exist is an error not_found, and holds no subscription', async () => {
  const hub = await startHub({ pipelines: PIPELINES, env: { HUB_WS_MAX_SUBSCRIPTIONS: '1' } });
  try {
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', project_id: 987654 });
    const error = await client.waitFor((m) => m.type === 'error', 'the error');
    assert.is(error.code, 'not_found');
    assert.is(error.project_id, 987654);
    assert.not.ok(client.messages.some((m) => m.type === 'subscribed'));
    const projectId = await createProject(hub, 'quick');
    client.send({ type: 'subscribe', project_id: projectId });
    await client.waitFor((m) => m.type === 'subscribed' && m.project_id === projectId, 'room for a real one');
    await client.close();
  } finally {
    await hub.stop();
  }
});

test('a reader opened for a subscribe that failed (invalid_offset) or whose client left at once is closed: no file handle stays', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  try {
    const projectId = await createProject(hub, 'held');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const file = logFileOf(hub, projectId, body.id);
    await waitFor(() => fs.existsSync(file) && fs.statSync(file).size > 0, 'the log');
    const pid = hub.process.pid!;
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: body.id, offset: 10_000_000 });
    assert.is((await client.waitFor((m) => m.type === 'error', 'the error')).code, 'invalid_offset');
    await waitFor(() => openHandles(pid, file) === 0, 'the reader to close after invalid_offset', 5000);
    for (let i = 0; i < 10; i++) {
      const leaving = await TestClient.connect(hub.url);
      leaving.send({ type: 'subscribe', run_id: body.id, offset: 0 });
      leaving.socket.terminate();
    }
    await waitFor(() => openHandles(pid, file) === 0, 'the readers to close after their clients left', 5000);
    client.send({ type: 'subscribe', run_id: body.id, offset: 0 });
    await client.waitFor((m) => m.type === 'lines', 'a subscribe still works');
    // One reader for one subscriber (the section indexer's reads of a growing log come and go: waited out).
    await waitFor(() => openHandles(pid, file) === 1, 'one reader for one subscriber', 5000);
    await hub.api('DELETE', `/api/projects/${projectId}/runs/${body.id}`);
    await client.complete(body.id);
    await waitFor(() => openHandles(pid, file) === 0, 'the reader to close after complete', 5000);
    await client.close();
  } finally {
    await hub.stop();
  }
});

test('a finished run whose log is missing or shorter than recorded: the bytes there are, then complete at once; a later offset gets log_reset', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  try {
    const { projectId, ids } = await finishedRuns(hub, 'lines', 2);
    const [missing, shorter] = ids;
    fs.rmSync(logFileOf(hub, projectId, missing));
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: missing, offset: 0 });
    const gone = await client.complete(missing, 5000);
    assert.is(gone.next, 0);
    const file = logFileOf(hub, projectId, shorter);
    const full = fs.statSync(file).size;
    const text = fs.readFileSync(file, 'utf8');
    const half = Buffer.byteLength(text.slice(0, text.indexOf('line 500 ')));
    fs.truncateSync(file, half);
    client.send({ type: 'subscribe', run_id: shorter, offset: 0 });
    const done = await client.complete(shorter, 5000);
    assert.is(done.next, half);
    const { lines } = client.linesOf(shorter, 0);
    assert.is(lines.at(-1)!.split(' ')[1], '499');
    client.send({ type: 'subscribe', run_id: shorter, offset: full });
    const reset = await client.waitFor((m) => m.type === 'error' && m.run_id === shorter, 'log_reset');
    assert.is(reset.code, 'log_reset');
    await client.close();
  } finally {
    await hub.stop();
  }
});

test.run();
