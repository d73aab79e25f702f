import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import S3rver from 's3rver';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { S3ObjectStore } from '../../server/logs/s3ObjectStore.js';
import { withTimeout } from '../../server/retry.js';
import { killProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { TOKEN_VARIABLE } from '../../pipeline-runner/state.js';
import { startCli } from '../helpers/cli.js';
import { startCluster, startWorker, type Cluster } from '../helpers/cluster.js';
import { createProject, nodeStep, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { freePort } from '../helpers/postgres.js';
import { ResettingFollower } from '../helpers/resettingFollower.js';
import { TestClient } from '../helpers/wsClient.js';
import { bytesOfLines } from '../soak/follower.js';

const PIPELINES = {
  // Lines for ever (until its machine goes), some of them in several UTF-8 bytes.
  endless: { steps: [{ name: 'talk', command: nodeStep(`let i = 0; setInterval(() => { i++; process.stdout.write('tick ' + i + ' é日😀'.repeat(i % 3) + '\\n'); }, 5)`) }], scopes: { all: 'talk' } },
  short: { steps: [{ name: 'talk', command: nodeStep(`for (let i = 1; i <= 400; i++) process.stdout.write('short ' + i + ' é日😀'.repeat(i % 3) + '\\n')`) }], scopes: { all: 'talk' } },
};

/**
 * A TCP server in front of s3rver that accepts connections and never answers them: a worker whose
 * archive goes through it hangs in its upload, a real point between recording a run's end and
 * archiving its log, where the test kills it.
 */
async function startBlackHole(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface Context {
  cluster: Cluster;
  s3: S3rver;
  s3Dir: string;
  archive: S3ObjectStore;
  redis: Redis;
  db: pg.Client;
}

const lostLog = suite<Context>('a lost worker\'s log (cluster)');

lostLog.before(async (context) => {
  context.s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-s3-'));
  const s3Port = await freePort();
  context.s3 = new S3rver({ port: s3Port, address: '127.0.0.1', directory: context.s3Dir, silent: true, configureBuckets: [{ name: 'hub-logs', configs: [] }] });
  await context.s3.run();
  const s3Env = { HUB_ARCHIVE_S3: 's3://hub-logs/archive', AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${s3Port}`, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  // Workers are started by each test (each on the archive it needs).
  context.cluster = await startCluster({ pipelines: PIPELINES, workers: 0, env: { ...s3Env, HUB_ARCHIVE_SWEEP_MS: '500' } });
  context.archive = S3ObjectStore.fromUrl('s3://hub-logs/archive', { endpoint: s3Env.AWS_ENDPOINT_URL_S3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  context.redis = new Redis(context.cluster.env.HUB_REDIS_URL);
  context.db = new pg.Client({ connectionString: context.cluster.env.HUB_DATABASE_URL });
  await context.db.connect();
});

lostLog.after(async ({ cluster, s3, s3Dir, archive, redis, db }) => {
  await db.end();
  redis.disconnect();
  archive.close();
  await cluster.stop();
  await s3.close();
  fs.rmSync(s3Dir, { recursive: true, force: true });
});

/** The bytes stored under `key` in the archive, or null. */
async function archived(archive: S3ObjectStore, key: string): Promise<Buffer | null> {
  const handle = await archive.open(key);
  if (!handle) return null;
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buffer, 0, size, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The whole log through `GET logs?offset=`, page after page from 0 until a page says complete. */
async function pollFromZero(hub: TestHub, projectId: number, runId: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let offset = 0;
  for (let pages = 0; pages < 1000; pages++) {
    const { body } = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs?offset=${offset}`);
    assert.is(body.offset, offset, 'each page starts where the last ended');
    pieces.push(bytesOfLines(body));
    offset = body.next;
    if (body.complete) return Buffer.concat(pieces);
  }
  throw new Error('the log never said complete');
}

/** A run's stream in Redis: its length (null when gone) and the time to live of its keys (-1: none). */
async function streamOf(redis: Redis, runId: number): Promise<{ size: number | null; ttl: number }> {
  const size = await redis.get(`hub:log:{run:${runId}}:size`);
  return { size: size === null ? null : Number(size), ttl: await redis.ttl(`hub:log:{run:${runId}}`) };
}

lostLog('a worker SIGKILLed with its run (its machine gone): the run fails with log_size = the bytes shipped, poll and WebSocket serve exactly those then complete, and the sweeper archives them and lets the stream expire', async ({ cluster, archive, redis, db }) => {
  const [a, b] = cluster.hubs;
  const worker = await startWorker(cluster.env, 'lost1');
  try {
    const projectId = await createProject(a, 'endless');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const live = await TestClient.connect(b.url);
    live.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await waitFor(async () => ((await streamOf(redis, run.id)).size ?? 0) > 20_000, 'some of the log shipped', 20_000);
    // The machine goes: the worker, the runner and the step at once.
    const { rows: [row] } = await db.query<{ runner_pid: number; runner_token: string }>('SELECT runner_pid, runner_token FROM runs WHERE id = $1', [run.id]);
    worker.process.kill('SIGKILL');
    process.kill(row.runner_pid, 'SIGKILL');
    killProcessesWithEnv(TOKEN_VARIABLE, row.runner_token);
    await new Promise((resolve) => worker.process.once('exit', resolve));
    const failed = await waitForRun(b, projectId, run.id, ['failed', 'completed', 'cancelled'], 15_000);
    // (read once the run has ended: an append the worker sent just before it died has landed by then)
    const shipped = (await streamOf(redis, run.id)).size!;
    const file = fs.readFileSync(path.join(worker.logs, String(projectId), `${run.id}.log`));
    const expected = file.subarray(0, shipped);
    assert.ok(shipped > 0 && file.length >= shipped, `the stream (${shipped} bytes) is a prefix of the worker's file (${file.length})`);
    assert.is(failed.status, 'failed');
    assert.match(failed.error_message, 'worker lost: lost1');
    assert.is(failed.log_size, shipped, 'log_size is what was shipped');
    for (const hub of [a, b]) {
      assert.ok((await pollFromZero(hub, projectId, run.id)).equals(expected), `offset=0 polling through ${hub.url} gives the shipped bytes`);
      const raw = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`);
      assert.is(raw.body, expected.toString(), 'raw gives the same bytes');
    }
    const lastLine = expected.toString().trimEnd().split('\n').at(-2)!;
    const search = await a.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/search?q=${encodeURIComponent(lastLine)}`);
    assert.equal(search.body.matches.map((m: { line: string }) => m.line), [lastLine], 'search finds a line near the end of the shipped bytes');
    // The follower that was there all along, and one subscribing from 0 now: the same bytes, then complete.
    const complete = await live.complete(run.id, 10_000);
    assert.is(complete.next, shipped);
    assert.ok(Buffer.concat(live.messages.filter((m) => m.type === 'lines' && m.run_id === run.id).map((m) => bytesOfLines(m as { lines: string[] }))).equals(expected), 'the live follower\'s copy is the shipped bytes');
    const late = await TestClient.connect(a.url);
    late.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    assert.is((await late.complete(run.id, 10_000)).next, shipped);
    assert.ok(Buffer.concat(late.messages.filter((m) => m.type === 'lines' && m.run_id === run.id).map((m) => bytesOfLines(m as { lines: string[] }))).equals(expected), 'a subscriber from 0 gets the shipped bytes');
    await Promise.all([live.close(), late.close()]);

    // The worker never archived it: the sweeper does, from the stream; then the stream expires.
    // The stream is set to expire once the upload is done (s3rver, unlike S3, shows an object while it is being written).
    await waitFor(async () => (await streamOf(redis, run.id)).ttl > 0, 'the sweeper to archive the log and set the stream to expire', 15_000);
    const copy = await archived(archive, `${projectId}/${run.id}.log`);
    assert.ok(copy?.equals(expected), `the archive holds the shipped bytes (${copy?.length} bytes archived, ${expected.length} shipped)`);
    assert.ok((await pollFromZero(b, projectId, run.id)).equals(expected), 'read from the archive: the same bytes');
  } finally {
    worker.process.kill('SIGKILL');
  }
});

lostLog('a worker SIGKILLed after recording its run\'s end and before archiving its log: the sweeper archives it from the stream, then the stream expires', async ({ cluster, archive, redis }) => {
  const [a] = cluster.hubs;
  // This worker's uploads go into a black hole: it records the end, then hangs in the archive's PUT.
  const hole = await startBlackHole();
  const worker = await startWorker({ ...cluster.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${hole.port}` }, 'gated1');
  try {
    const projectId = await createProject(a, 'short');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const completed = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 15_000);
    assert.is(completed.status, 'completed');
    await waitFor(() => hole.connections() > 0, 'the worker to be in its upload', 10_000);
    // While the worker is on it (its claim renewed), the sweeper (every 500 ms here) leaves the log to it.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    assert.is((await streamOf(redis, run.id)).ttl, -1, 'not archived by the sweeper while its worker uploads it');
    worker.process.kill('SIGKILL');
    await new Promise((resolve) => worker.process.once('exit', resolve));
    const file = fs.readFileSync(path.join(worker.logs, String(projectId), `${run.id}.log`));
    assert.is(completed.log_size, file.length);
    // Its claim lapses (15 s after its last renewal), then the sweeper takes over.
    await waitFor(async () => (await streamOf(redis, run.id)).ttl > 0, 'the sweeper to archive the log and set the stream to expire', 30_000);
    const copy = await archived(archive, `${projectId}/${run.id}.log`);
    assert.ok(copy?.equals(file), `the archive holds the whole log (${copy?.length} bytes archived, ${file.length} written)`);
  } finally {
    worker.process.kill('SIGKILL');
    await hole.close();
  }
});

lostLog.run();

/** A worker's machine goes: the worker, its run's runner and the run's steps SIGKILLed at once. */
async function loseMachine(databaseUrl: string, worker: { process: { kill(signal: NodeJS.Signals): boolean } }, runId: number): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const { rows: [row] } = await db.query<{ runner_pid: number; runner_token: string }>('SELECT runner_pid, runner_token FROM runs WHERE id = $1', [runId]);
  await db.end();
  worker.process.kill('SIGKILL');
  process.kill(row.runner_pid, 'SIGKILL');
  killProcessesWithEnv(TOKEN_VARIABLE, row.runner_token);
}

// The archive refuses the worker's first tries (its folder for the project is a file, as a full or
// read-only volume would refuse); the hubs' sweeper is an hour away: the worker itself tries again.
const retried = suite('a failed archive (cluster)');
retried('a worker whose archive fails tries again with backoff from its own file, and the stream expires only once the archive holds the log', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES, hubs: 1, workers: 1, env: { HUB_ARCHIVE_SWEEP_MS: '3600000' } });
  const redis = new Redis(cluster.env.HUB_REDIS_URL);
  try {
    const hub = cluster.hubs[0];
    const projectId = await createProject(hub, 'short');
    fs.writeFileSync(path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId)), 'not a folder');
    const runId = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id as number;
    const run = await waitForRun(hub, projectId, runId, ['completed']);
    await waitFor(() => /archiving a finished log failed; it is tried again/.test(cluster.workers[0].output()), 'the first archive to fail', 20_000);
    assert.is((await streamOf(redis, runId)).ttl, -1, 'the stream stays while the log is not archived');
    // Redis loses the run's stream meanwhile: the finished log is nowhere whole. Readers are told to
    // come back (503), never handed "complete" at 0 (which they would take for the whole log).
    const keys = await redis.keys(`hub:log:{run:${runId}}*`);
    await redis.del(...keys);
    const poll = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs?offset=0`);
    assert.is(poll.status, 503, `a poll is 503, not complete (${JSON.stringify(poll.body)})`);
    assert.is(poll.body.error.code, 'log_unavailable');
    assert.is((await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs/raw`)).status, 503, 'raw too');
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: runId, offset: 0 });
    await waitFor(() => client.messages.some((m) => m.type === 'error' && m.code === 'log_unavailable'), 'a subscriber to be told the log is unavailable', 10_000);
    assert.not.ok(client.messages.some((m) => m.type === 'complete'), 'no complete');
    await client.close();
    fs.rmSync(path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId)));
    const archived = path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId), `${runId}.log`);
    await waitFor(() => fs.existsSync(archived), 'the worker to archive the log on a later try', 30_000);
    assert.is(fs.statSync(archived).size, run.log_size, 'the archive holds the whole log');
    // From the worker's own file: the log is whole again for every reader.
    const file = fs.readFileSync(path.join(cluster.workers[0].logs, String(projectId), `${runId}.log`));
    assert.ok((await pollFromZero(hub, projectId, runId)).equals(file), 'polled from 0: the worker\'s file');
  } finally {
    redis.disconnect();
    await cluster.stop();
  }
});

retried('a worker killed while it still owes a finished log to the archive archives it from its own file once it is back, though Redis lost the stream meanwhile', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES, hubs: 1, workers: 0, env: { HUB_ARCHIVE_SWEEP_MS: '3600000' } });
  const redis = new Redis(cluster.env.HUB_REDIS_URL);
  let worker = await startWorker(cluster.env, 'owing1');
  try {
    const hub = cluster.hubs[0];
    const projectId = await createProject(hub, 'short');
    const blocker = path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId));
    fs.writeFileSync(blocker, 'not a folder');
    const runId = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id as number;
    const run = await waitForRun(hub, projectId, runId, ['completed']);
    await waitFor(() => /archiving a finished log failed/.test(worker.output()), 'the worker\'s archive to fail', 20_000);
    worker.process.kill('SIGKILL');
    await new Promise((resolve) => worker.process.once('exit', resolve));
    // The stream goes too (Redis restarted empty): only the worker's file holds the log now.
    await redis.del(...(await redis.keys(`hub:log:{run:${runId}}*`)));
    assert.is((await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs/raw`)).status, 503, 'unavailable while nobody has it');
    // The CLI following it is told so, and asks again with backoff until the log is back.
    const cli = startCli(hub, ['logs', String(runId), '-f']);
    await waitFor(() => cli.stderr().includes('log_unavailable'), 'the CLI to be told the log is unavailable', 10_000);
    fs.rmSync(blocker);
    // The same machine back: it finds the log it owes on its disk.
    worker = await startWorker(cluster.env, 'owing1', path.dirname(worker.logs));
    const archived = path.join(blocker, `${runId}.log`);
    await waitFor(() => fs.existsSync(archived), 'the worker, back, to archive the log it owed', 20_000);
    const file = fs.readFileSync(path.join(worker.logs, String(projectId), `${runId}.log`));
    assert.is(file.length, run.log_size);
    assert.ok(fs.readFileSync(archived).equals(file), 'the archive holds the worker\'s file');
    assert.ok((await pollFromZero(hub, projectId, runId)).equals(file), 'polled from 0: the whole log again');
    assert.is(await withTimeout(cli.exited, 30_000, 'the CLI to end'), 0, cli.stderr());
    assert.ok(cli.stdout().equals(file), 'the CLI wrote the whole log, once');
    await waitFor(() => fs.readdirSync(path.join(worker.logs, '.unarchived')).length === 0, 'the worker to forget the log once archived', 5_000);
  } finally {
    worker.process.kill('SIGKILL');
    redis.disconnect();
    await cluster.stop();
  }
});

retried('a lost worker\'s run is archived as soon as a hub gives it up, not at the next sweep (an hour away here)', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES, hubs: 1, workers: 0, env: { HUB_ARCHIVE_SWEEP_MS: '3600000' } });
  const redis = new Redis(cluster.env.HUB_REDIS_URL);
  const worker = await startWorker(cluster.env, 'lost2');
  try {
    const hub = cluster.hubs[0];
    const projectId = await createProject(hub, 'endless');
    const runId = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id as number;
    await waitFor(async () => ((await streamOf(redis, runId)).size ?? 0) > 5_000, 'some of the log shipped', 20_000);
    await loseMachine(cluster.env.HUB_DATABASE_URL, worker, runId);
    const failed = await waitForRun(hub, projectId, runId, ['failed'], 15_000);
    const archived = path.join(cluster.env.HUB_ARCHIVE_DIR, String(projectId), `${runId}.log`);
    await waitFor(() => fs.existsSync(archived) && fs.statSync(archived).size === failed.log_size, 'the hub to archive the shipped bytes', 10_000);
    const file = fs.readFileSync(path.join(worker.logs, String(projectId), `${runId}.log`));
    assert.ok(fs.readFileSync(archived).equals(file.subarray(0, failed.log_size)), 'the archive holds exactly the bytes shipped');
    await waitFor(async () => (await streamOf(redis, runId)).ttl > 0, 'the stream to be set to expire', 10_000);
  } finally {
    worker.process.kill('SIGKILL');
    redis.disconnect();
    await cluster.stop();
  }
});

retried('a lost worker\'s run whose stream Redis lost before the verdict keeps the size its worker recorded: readers are told the log is unavailable, not handed an empty one', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES, hubs: 1, workers: 0 });
  const redis = new Redis(cluster.env.HUB_REDIS_URL);
  const worker = await startWorker(cluster.env, 'lost3');
  try {
    const hub = cluster.hubs[0];
    const projectId = await createProject(hub, 'endless');
    const runId = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id as number;
    await waitFor(async () => ((await hub.api('GET', `/api/projects/${projectId}/runs/${runId}`)).body.log_size ?? 0) > 5_000, 'its worker to record some of the log', 20_000);
    // A follower, which subscribes again from 0 on log_reset, as the docs say.
    const follower = new ResettingFollower(await TestClient.connect(hub.url), runId);
    await follower.client.waitFor((m) => m.type === 'lines' && m.run_id === runId, 'the follower\'s first lines', 10_000);
    // Its machine goes, then Redis loses the run's stream before a hub gives the run up.
    await loseMachine(cluster.env.HUB_DATABASE_URL, worker, runId);
    const recorded = (await hub.api('GET', `/api/projects/${projectId}/runs/${runId}`)).body.log_size as number;
    const keys = await redis.keys(`hub:log:{run:${runId}}*`);
    await redis.del(...keys);
    const failed = await waitForRun(hub, projectId, runId, ['failed'], 15_000);
    assert.ok(failed.log_size >= recorded && recorded > 0, `log_size ${failed.log_size}, at least the ${recorded} recorded before`);
    const poll = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs?offset=0`);
    assert.is(poll.status, 503, `a poll is told the log is unavailable (${JSON.stringify(poll.body)})`);
    assert.is(poll.body.error.code, 'log_unavailable');
    // The follower too: told the log is unavailable, never handed `complete` at what could be read.
    await follower.client.waitFor((m) => m.type === 'error' && m.code === 'log_unavailable' && m.run_id === runId, 'the follower to be told the log is unavailable', 10_000);
    assert.is(follower.client.messages.filter((m) => m.type === 'complete' && m.run_id === runId).length, 0, 'no complete');
    await follower.client.close();
  } finally {
    worker.process.kill('SIGKILL');
    redis.disconnect();
    await cluster.stop();
  }
});
retried.run();
