import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, waitFor, waitForRun } from '../helpers/hub.js';
import { startCluster, startWorker, type Cluster } from '../helpers/cluster.js';
import { TestClient } from '../helpers/wsClient.js';
import { bytesOfLines } from '../soak/follower.js';

const PIPELINES = {
  chatty: { steps: [{ name: 'talk', command: nodeStep(`(async () => { for (let i = 1; i <= 300; i++) { process.stdout.write('line ' + i + ' é日😀'.repeat(i % 4) + '\\n'); if (i % 30 === 0) await new Promise(r => setTimeout(r, 60)); } })()`) }], scopes: { all: 'talk' } },
  long: { steps: [{ name: 'wait', command: ['sh', '-c', "trap '' TERM; echo waiting; sleep 60"] }], scopes: { all: 'wait' } },
};

const logOf = (cluster: Cluster, projectId: number, runId: number) =>
  cluster.workers.map((w) => path.join(w.logs, String(projectId), `${runId}.log`)).find((file) => fs.existsSync(file));

test('2 hubs + 2 workers: a run started through one hub is carried out by a worker and followed through the other, byte for byte; cancel through either hub; a lost worker fails its run and the queue moves on', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES });
  const [a, b] = cluster.hubs;
  try {
    // Started through hub A, followed through hub B from offset 0; its webhook fires once per event
    // although both hubs see every change.
    const projectId = await createProject(a, 'chatty');
    const received: string[] = [];
    const receiver = http.createServer((request, response) => {
      received.push(String(request.headers['x-hub-event']));
      request.resume().on('end', () => response.writeHead(204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    await b.api('POST', `/api/projects/${projectId}/webhooks`, { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, secret: 's' });
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    assert.ok(['pending', 'running'].includes(run.status), `recorded, for a worker to claim (${run.status})`);
    const client = await TestClient.connect(b.url);
    client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    const complete = await client.complete(run.id, 20_000);
    assert.is(complete.status, 'completed');
    const file = fs.readFileSync(logOf(cluster, projectId, run.id)!);
    const copy = Buffer.concat(client.messages.filter((m) => m.type === 'lines' && m.run_id === run.id).map((m) => bytesOfLines(m as { lines: string[] })));
    assert.is(createHash('sha256').update(copy).digest('hex'), createHash('sha256').update(file).digest('hex'), "the copy equals the worker's log file");
    assert.is(complete.next, file.length);
    await waitFor(() => received.length >= 2, 'the webhook deliveries');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(received.sort(), ['run.completed', 'run.started'], 'each event once, from one of the two hubs');
    receiver.close();
    const viaA = await a.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`);
    assert.is(viaA.body, file.toString(), 'the raw log through the other hub');
    // Archived (the stream expires only after that), and served from the archive alike.
    await waitFor(() => fs.existsSync(path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId), `${run.id}.log`)), 'the archive');
    assert.ok(fs.readFileSync(path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId), `${run.id}.log`)).equals(file));
    const late = await TestClient.connect(a.url);
    late.send({ type: 'subscribe', run_id: run.id, tail: 5 });
    await late.complete(run.id);
    assert.equal(late.linesOf(run.id).lines, file.toString().trimEnd().split('\n').slice(-5), 'tail 5 of a finished run');
    await late.close();
    assert.is((await b.api('GET', `/api/projects/${projectId}/runs/${run.id}`)).body.log_size, file.length);
    // Purged through the other hub: record, archived log and stream all go.
    assert.is((await b.api('DELETE', `/api/projects/${projectId}/runs/${run.id}?purge=true`)).status, 204);
    await waitFor(() => !fs.existsSync(path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId), `${run.id}.log`)), 'the archived log to go');
    assert.is((await a.api('GET', `/api/projects/${projectId}/runs/${run.id}`)).status, 404);

    // Cancel through hub B a run that hub A started: the worker kills the step's group.
    const other = await createProject(a, 'long');
    const long = (await a.api('POST', `/api/projects/${other}/runs`, { scope: 'all' })).body;
    await waitForRun(b, other, long.id, ['running']);
    await waitFor(() => logOf(cluster, other, long.id) && fs.readFileSync(logOf(cluster, other, long.id)!, 'utf8').includes('waiting'), 'the step');
    // A running run's size reaches the hubs too (recorded by its worker, at most a second old).
    const size = fs.statSync(logOf(cluster, other, long.id)!).size;
    await waitFor(async () => (await b.api('GET', `/api/projects/${other}/runs/${long.id}`)).body.log_size === size, 'the live size through a hub', 5000);
    assert.is((await b.api('DELETE', `/api/projects/${other}/runs/${long.id}`)).status, 202);
    const cancelled = await waitForRun(a, other, long.id, ['cancelled', 'failed', 'completed'], 15_000);
    assert.is(cancelled.status, 'cancelled');

    // A worker SIGKILLed mid-run: its run fails "worker lost"; the queued one runs on the other worker.
    const held = (await a.api('POST', `/api/projects/${other}/runs`, { scope: 'all' })).body;
    const queued = (await a.api('POST', `/api/projects/${other}/runs`, { scope: 'all', if_busy: 'queue' })).body;
    await waitForRun(a, other, held.id, ['running']);
    // (claimed is running: its log file follows a moment later)
    const carrier = await waitFor(() => cluster.workers.find((w) => fs.existsSync(path.join(w.logs, String(other), `${held.id}.log`))), 'the worker carrying the run');
    carrier.process.kill('SIGKILL');
    const lost = await waitForRun(b, other, held.id, ['failed', 'cancelled', 'completed'], 15_000);
    assert.is(lost.status, 'failed');
    assert.match(lost.error_message, `worker lost: ${carrier.id}`);
    await waitForRun(a, other, queued.id, ['running'], 15_000);
    const survivor = cluster.workers.find((w) => w !== carrier)!;
    await waitFor(() => fs.existsSync(path.join(survivor.logs, String(other), `${queued.id}.log`)), 'the queued run on the other worker');
    await a.api('DELETE', `/api/projects/${other}/runs/${queued.id}`);

    // 50 starts raced through both hubs without "queue": the database lets exactly one in.
    const raced = await createProject(a, 'long');
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).api('POST', `/api/projects/${raced}/runs`, { scope: 'all' })));
    assert.equal(answers.map((r) => r.status).filter((s) => s !== 409), [201], 'one 201, the rest 409');
    assert.equal([...new Set(answers.filter((r) => r.status === 409).map((r) => r.body.error.code))], ['run_active']);
    const [winner] = answers.filter((r) => r.status === 201).map((r) => r.body.id);
    const runsOfRaced = (await b.api('GET', `/api/projects/${raced}/runs`)).body;
    assert.equal(runsOfRaced.map((r: { id: number }) => r.id), [winner], 'one run recorded');
    await a.api('DELETE', `/api/projects/${raced}/runs/${winner}`);
    await client.close();
  } finally {
    await cluster.stop();
  }
});

test('a hub SIGKILLed mid-run: its client resumes on the other hub from its last next, byte for byte; a worker restarted mid-run re-attaches to its runner', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES });
  const [a, b] = cluster.hubs;
  try {
    const projectId = await createProject(a, 'chatty');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const first = await TestClient.connect(a.url);
    first.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await first.waitFor((m) => m.type === 'lines' && m.run_id === run.id, 'the first lines', 15_000);
    // The worker carrying it restarts: a new process with the same id finds its runner again.
    const carrier = cluster.workers.find((w) => fs.existsSync(path.join(w.logs, String(projectId), `${run.id}.log`)))!;
    carrier.process.kill('SIGTERM');
    await new Promise((resolve) => carrier.process.once('exit', resolve));
    const again = await startWorker(cluster.env, carrier.id, path.dirname(carrier.logs));
    cluster.workers.push(again);
    await a.stop('SIGKILL');
    const { next } = first.linesOf(run.id, 0);
    const resumed = await TestClient.connect(b.url);
    resumed.send({ type: 'subscribe', run_id: run.id, offset: next });
    const complete = await resumed.complete(run.id, 20_000);
    assert.is(complete.status, 'completed');
    const copy = Buffer.concat([...first.messages, ...resumed.messages].filter((m) => m.type === 'lines' && m.run_id === run.id).map((m) => bytesOfLines(m as { lines: string[] })));
    const file = fs.readFileSync(path.join(carrier.logs, String(projectId), `${run.id}.log`));
    assert.ok(copy.equals(file), 'the two halves make the log');
    assert.match(again.output(), 're-attached to a run of this worker');
    await Promise.all([first.close(), resumed.close()]);
  } finally {
    await cluster.stop();
  }
});

test.run();
