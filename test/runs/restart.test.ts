import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const counting = (from: number, to: number) =>
  nodeStep(`(async () => { for (let i = ${from}; i <= ${to}; i++) { console.log('line ' + i); await new Promise(r => setTimeout(r, 20)); } })()`);

const pipelines = {
  counting: {
    steps: [
      { name: 'first', command: counting(1, 60) },
      { name: 'second', command: counting(61, 120) },
    ],
    scopes: { all: 'first' },
  },
};

test('a server killed mid-run is restarted: the runner kept writing and the run is recorded with its whole log', async () => {
  const first = await startHub({ pipelines });
  const projectId = await createProject(first, 'counting');
  const { body } = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const logFile = path.join(first.dir, 'logs', body.log_path);
  await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('line 20'), 'the run to be under way');
  await first.stop('SIGKILL');
  const sizeAtKill = fs.statSync(logFile).size;
  await waitFor(() => fs.statSync(logFile).size > sizeAtKill + 100, 'the runner to keep writing without the server');
  const second = await startHub({ pipelines, dir: first.dir });
  try {
    const run = await waitForRun(second, projectId, body.id, ['completed', 'failed'], 20_000);
    assert.is(run.status, 'completed', run.error_message);
    const lines = fs.readFileSync(logFile, 'utf8').split('\n').filter((line) => line.startsWith('line '));
    assert.equal(lines, Array.from({ length: 120 }, (_, i) => `line ${i + 1}`));
    assert.is(run.log_size, fs.statSync(logFile).size);
  } finally {
    await second.stop();
  }
});

test('a runner that ended while the server was down is settled on start; a queued run then starts', async () => {
  const first = await startHub({ pipelines });
  const projectId = await createProject(first, 'counting');
  const a = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const b = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' });
  await first.stop('SIGKILL');
  const stateFile = path.join(first.dir, 'logs', String(projectId), `${a.body.id}.json`);
  await waitFor(() => fs.existsSync(stateFile) && JSON.parse(fs.readFileSync(stateFile, 'utf8')).finished_at, 'the runner to finish alone', 20_000);
  const second = await startHub({ pipelines, dir: first.dir });
  try {
    assert.is((await waitForRun(second, projectId, a.body.id, ['completed', 'failed'])).status, 'completed');
    assert.is((await waitForRun(second, projectId, b.body.id, ['completed', 'failed'], 20_000)).status, 'completed');
  } finally {
    await second.stop();
  }
});

test('a runner killed with SIGKILL fails its run with a message that says so', async () => {
  const hub = await startHub({ pipelines });
  try {
    const projectId = await createProject(hub, 'counting');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: body.id, offset: 0 });
    const stateFile = path.join(hub.dir, 'logs', String(projectId), `${body.id}.json`);
    const pid = await waitFor(() => fs.existsSync(stateFile) && JSON.parse(fs.readFileSync(stateFile, 'utf8')).pid, 'the runner state');
    process.kill(pid, 'SIGKILL');
    const run = await waitForRun(hub, projectId, body.id, ['failed', 'completed']);
    assert.is(run.status, 'failed');
    assert.is(run.error_message, 'The runner was killed by SIGKILL before writing a final state');
    const size = fs.statSync(path.join(hub.dir, 'logs', run.log_path)).size;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.is(fs.statSync(path.join(hub.dir, 'logs', run.log_path)).size, size, 'the orphaned step was stopped too');
    const complete = await client.complete(body.id);
    assert.is(complete.status, 'failed');
    const raw = fs.readFileSync(path.join(hub.dir, 'logs', run.log_path), 'utf8');
    assert.is(complete.next, Buffer.byteLength(raw));
    assert.equal(client.linesOf(body.id, 0).lines, raw.split('\n').slice(0, -1), 'every byte before the kill, over WebSocket');
    const http = await hub.api('GET', `/api/projects/${projectId}/runs/${body.id}/logs?offset=0`);
    assert.equal(http.body.lines, raw.split('\n').slice(0, -1), 'and over HTTP');
    await client.close();
  } finally {
    await hub.stop();
  }
});

test.run();
