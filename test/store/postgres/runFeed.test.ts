import pg from 'pg';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openPostgresStore } from '../../../server/store/postgres/store.js';
import { RunFeed } from '../../../server/store/postgres/runFeed.js';
import type { RunRow } from '../../../server/store/runs.js';
import { startPostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/hub.js';

const postgres = await startPostgres();
const log = pino({ level: 'silent' });

test('changes nobody was told of are delivered by the next re-read, each state once and in order; a notice always delivers', async () => {
  const store = await openPostgresStore(await postgres.createDatabase());
  const delivered: string[] = [];
  const feed = new RunFeed(store.runs, { changed: (run: RunRow) => delivered.push(`${run.id}:${run.status}`), removed: () => {} }, 600_000, log);
  try {
    const project = (await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    const insert = () => store.runs.insert({ project_id: project, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });
    const [first, second] = [await insert(), await insert()];
    feed.resync();
    await feed.settled();
    assert.equal(delivered.splice(0), [`${first.id}:pending`, `${second.id}:pending`], 'the active runs');
    feed.resync();
    await feed.settled();
    assert.equal(delivered, [], 'nothing new: nothing delivered');
    // Changed without a notice (one lost while LISTEN was away): a run that ended, another that started.
    await store.runs.update(first.id, { status: 'running', started_at: new Date().toISOString() });
    await store.runs.update(first.id, { status: 'completed', finished_at: new Date().toISOString() });
    await store.runs.update(second.id, { status: 'running', started_at: new Date().toISOString() });
    await store.runs.update(second.id, { log_size: 123 }); // not news for a follower
    feed.resync();
    await feed.settled();
    assert.equal(delivered.splice(0), [`${first.id}:completed`, `${second.id}:running`], 'the ended run (no longer active) and the started one');
    feed.resync();
    await feed.settled();
    assert.equal(delivered, [], 'the ended run is not delivered again');
    feed.notice(String(second.id));
    feed.notice(String(second.id));
    feed.notice('removed:1:999:purged');
    feed.notice('nonsense');
    await feed.settled();
    assert.ok(delivered.length >= 1 && delivered.every((entry) => entry === `${second.id}:running`), `notices deliver what they name (${delivered})`);
  } finally {
    feed.close();
    await store.close();
  }
});

test('a run delivered before and purged while LISTEN was away (its removal notice lost) is announced removed by the next re-read; runs that only aged out are not', async () => {
  const store = await openPostgresStore(await postgres.createDatabase());
  const removed: string[] = [];
  const feed = new RunFeed(store.runs, { changed: () => {}, removed: (projectId, runId, reason) => removed.push(`${projectId}:${runId}:${reason}`) }, 600_000, log);
  try {
    const project = (await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    const insert = () => store.runs.insert({ project_id: project, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });
    const [kept, purged] = [await insert(), await insert()];
    feed.resync();
    await feed.settled();
    for (const run of [kept, purged]) await store.runs.update(run.id, { status: 'completed', started_at: new Date(Date.now() - 3_600_000).toISOString(), finished_at: new Date(Date.now() - 3_600_000).toISOString() });
    await store.runs.delete(purged.id); // no notice: it was lost with the connection
    feed.resync();
    await feed.settled();
    assert.equal(removed, [`${project}:${purged.id}:purged`], 'the purged run is announced; the one that only left the re-read window is not');
    feed.resync();
    await feed.settled();
    assert.equal(removed.length, 1, 'announced once');
  } finally {
    feed.close();
    await store.close();
  }
});

test('a LISTEN connection whose backend is terminated comes back, says so, and hears notices again', async () => {
  const url = await postgres.createDatabase();
  const store = await openPostgresStore(url, { connectTimeoutMs: 2000, statementTimeoutMs: 5000, pingMs: 200 });
  const notices: string[] = [];
  let connected = 0;
  const listener = store.listen('feed_test', { notice: (payload) => notices.push(payload), connected: () => connected++ });
  const admin = new pg.Client(postgres.admin);
  await admin.connect();
  try {
    await waitFor(() => connected === 1 && listener.isListening, 'the first LISTEN');
    await store.query("SELECT pg_notify('feed_test', 'one')");
    await waitFor(() => notices.includes('one'), 'the first notice');
    const database = new URL(url).pathname.slice(1);
    const { rows } = await admin.query("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = $1", [database]);
    assert.ok(rows[0].n >= 1, 'its backend terminated');
    await waitFor(() => connected === 2 && listener.isListening, 'LISTEN again', 5000);
    await listener.ping();
    await store.query("SELECT pg_notify('feed_test', 'two')");
    await waitFor(() => notices.includes('two'), 'a notice after the reconnect');
  } finally {
    await admin.end();
    await listener.close();
    await store.close();
  }
});

test.after(() => postgres.stop());
test.run();
