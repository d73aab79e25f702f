import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../server/config.js';
import { openArchive } from '../../server/logs/archive.js';
import { createRedisClient } from '../../server/logs/redisClient.js';
import { openPostgresStore } from '../../server/store/postgres/store.js';
import { Worker } from '../../server/worker/worker.js';
import { startPostgres } from '../helpers/postgres.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/hub.js';

const postgres = await startPostgres();
const redisServer = await startRedis();
const silent = pino({ level: 'silent' });
/** Far above what a notice takes: a run found sooner than this was found by a notice, not the poll. */
const POLL_MS = 5000;

async function setUp() {
  const url = await postgres.createDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-notices-'));
  const config = loadConfig({ HUB_DATABASE_URL: url, HUB_REDIS_URL: redisServer.url, HUB_WORKER_ID: 'w1', HUB_WORKER_POLL_MS: String(POLL_MS), HUB_DATA_DIR: dir, HUB_ARCHIVE_DIR: path.join(dir, 'archive') });
  const store = await openPostgresStore(url);
  const redis = createRedisClient(config);
  const worker = new Worker(config, store, redis, await openArchive(config), silent);
  const admin = new pg.Client({ ...postgres.admin, database: new URL(url).pathname.slice(1) });
  await admin.connect();
  const project = await store.projects.insert({ name: 'p', doc_root: dir, pipeline: 'p', settings: {} });
  const queue = () => store.runs.insert({ project_id: project.id, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });
  const close = async () => {
    await worker.close();
    redis.disconnect();
    await admin.end();
    await store.close();
  };
  return { store, worker, admin, queue, close };
}

/**
 * Statements sent by every pg client of this process but `admin` (counted at the client:
 * pg_stat_database's counters reach the server up to 10 s late from an idle backend).
 */
function countStatements(admin: pg.Client) {
  const query = pg.Client.prototype.query;
  let sent = 0;
  pg.Client.prototype.query = function counted(this: pg.Client, ...args: unknown[]) {
    if (this !== admin) sent++;
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  return { sent: () => sent, stop: () => { pg.Client.prototype.query = query; } };
}

test('an idle worker sends PostgreSQL a statement a second or so, and hears of a queued run and of a cancel by LISTEN, well within its poll', async () => {
  const { store, worker, admin, queue, close } = await setUp();
  try {
    await worker.start();
    await waitFor(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN hub_work'")).rowCount, 'the worker to LISTEN');
    // Idle: a poll of claims and of cancels and a lease renewal (the heartbeat) in 5 s, and the LISTEN connection's ping.
    const counter = countStatements(admin);
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5000)); // the measuring window itself, not a wait for something
    counter.stop();
    const rate = counter.sent() / ((Date.now() - started) / 1000);
    console.log(`idle worker: ${rate.toFixed(2)} statements/s`);
    assert.ok(rate < 1, `an idle worker sends ${rate.toFixed(2)} statements/s (8/s when it polled 4×/s)`);

    const queuedAt = Date.now();
    const run = await queue();
    await waitFor(async () => (await store.runs.get(run.id))?.status !== 'pending', 'the queued run to be claimed', POLL_MS - 1000);
    assert.ok(Date.now() - queuedAt < 1500, `claimed ${Date.now() - queuedAt} ms after it was queued`);

    // A cancel of a run this worker holds: the worker reads its cancels at once.
    const held = await queue();
    await waitFor(async () => (await store.runs.get(held.id))?.status !== 'pending', 'the second run to be claimed', POLL_MS - 1000);
    await admin.query("UPDATE hub.runs SET status = 'running', worker_id = 'w1' WHERE id = $1", [held.id]);
    let asked = 0;
    const cancelsFor = store.cluster.cancelsFor.bind(store.cluster);
    store.cluster.cancelsFor = async (id) => {
      asked++;
      return cancelsFor(id);
    };
    assert.ok(await store.cluster.requestCancel(held.id));
    await waitFor(() => asked > 0, 'the worker to read its cancels', 1500);
  } finally {
    await close();
  }
});

test('the LISTEN connection cut by the server: the worker listens again, looks once, and hears of the next run', async () => {
  const { store, worker, admin, queue, close } = await setUp();
  try {
    await worker.start();
    const listener = async () => (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN hub_work'")).rows[0]?.pid;
    const first = await waitFor(listener, 'the worker to LISTEN');
    await admin.query('SELECT pg_terminate_backend($1)', [first]);
    // Queued while it was away: the look on reconnecting finds it.
    const missed = await queue();
    await waitFor(async () => {
      const pid = await listener();
      return pid && pid !== first;
    }, 'the worker to LISTEN again', POLL_MS - 1000);
    await waitFor(async () => (await store.runs.get(missed.id))?.status !== 'pending', 'the run queued while it was away to be claimed', POLL_MS - 1000);
    const queuedAt = Date.now();
    const next = await queue();
    await waitFor(async () => (await store.runs.get(next.id))?.status !== 'pending', 'the next run to be claimed', POLL_MS - 1000);
    assert.ok(Date.now() - queuedAt < 1500);
  } finally {
    await close();
  }
});

test.after(async () => {
  await redisServer.stop();
  await postgres.stop();
});

test.run();
