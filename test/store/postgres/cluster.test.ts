import { test } from 'uvu';
import pg from 'pg';
import * as assert from 'uvu/assert';
import { openPostgresStore, type PostgresStore } from '../../../server/store/postgres/store.js';
import { startPostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/hub.js';

const postgres = await startPostgres();

async function twoHubs(): Promise<[PostgresStore, PostgresStore]> {
  const url = await postgres.createDatabase();
  return [await openPostgresStore(url), await openPostgresStore(url)];
}

const LEASE_MS = 60_000;

const pending = (store: PostgresStore, projectId: number) =>
  store.runs.insert({ project_id: projectId, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });

test('two hubs racing 50 claims over 5 projects of 10 queued runs: one running run per project, the oldest of each', async () => {
  const [a, b] = await twoHubs();
  try {
    const projects = [];
    for (let p = 0; p < 5; p++) projects.push((await a.projects.insert({ name: `p${p}`, doc_root: '/tmp', pipeline: 'p', settings: {} })).id);
    const oldest = new Map<number, number>();
    for (let i = 0; i < 10; i++) {
      for (const projectId of projects) {
        const run = await pending(i % 2 ? a : b, projectId);
        if (!oldest.has(projectId)) oldest.set(projectId, run.id);
      }
    }
    const claims = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).cluster.claimNext(`worker-${i % 4}`, { pid: 1000 + i, token: `t${i}` }, LEASE_MS)));
    const won = claims.filter((claim) => claim !== null);
    assert.is(won.length, 5, 'one per project');
    assert.equal(won.map((run) => run!.id).sort((x, y) => x - y), [...oldest.values()].sort((x, y) => x - y), 'the oldest of each project');
    for (const run of won) assert.ok(run!.worker_id?.startsWith('worker-') && run!.runner_token?.startsWith('t'));
    assert.is(await a.cluster.claimNext('worker-9', { pid: 1, token: 'x' }, LEASE_MS), null, 'nothing more may start');
    const first = won[0]!;
    await a.runs.settle(first.id, { status: 'completed' });
    const next = await b.cluster.claimNext('worker-9', { pid: 2, token: 'y' }, LEASE_MS);
    assert.is(next?.project_id, first.project_id, 'its project\'s queue moves on');
    assert.is(next?.id, Math.min(...(await a.runs.listActiveForProject(first.project_id)).map((run) => run.id)));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a run whose lease expired (database time) is lost, one renewed is not; cancels asked through any hub reach its worker', async () => {
  const [hub, worker] = await twoHubs();
  try {
    const projectId = (await hub.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    const other = (await hub.projects.insert({ name: 'q', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    await pending(hub, projectId);
    await pending(hub, other);
    const mine = (await worker.cluster.claimNext('w1', { pid: 1, token: 'a' }, 200))!;
    const theirs = (await worker.cluster.claimNext('w2', { pid: 2, token: 'b' }, 200))!;
    assert.is(mine.lease_epoch, 1, 'the first claim is epoch 1');
    assert.ok(mine.lease_expires_at instanceof Date);
    assert.equal(await hub.cluster.runsOfLostWorkers(200), []);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await worker.cluster.renewLeases('w2', [{ runId: theirs.id, epoch: 1 }], 200), [{ runId: theirs.id, epoch: 1 }]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal((await hub.cluster.runsOfLostWorkers(200)).map((run) => run.id), [mine.id], "w1's lease expired, w2's was renewed");
    assert.equal(await worker.cluster.renewLeases('w1', [{ runId: mine.id, epoch: 1 }], 200), [], 'an expired lease is not renewed');
    assert.equal(await worker.cluster.renewLeases('w1', [{ runId: theirs.id, epoch: 1 }], 200), [], "another worker's lease is not renewed");
    assert.ok(await hub.cluster.requestCancel(theirs.id));
    assert.equal(await worker.cluster.cancelsFor('w2'), [theirs.id]);
    assert.equal(await worker.cluster.cancelsFor('w1'), []);
    await hub.runs.settle(theirs.id, { status: 'cancelled' });
    assert.not.ok(await hub.cluster.requestCancel(theirs.id), 'a finished run cannot be cancelled');
    const json = Object.keys((await hub.runs.get(mine.id))!);
    assert.ok(json.includes('worker_id'), 'the store keeps the worker');
  } finally {
    await Promise.all([hub.close(), worker.close()]);
  }
});

test('a write under a stale lease is refused: progress, log size and end under an old epoch, another worker, or an expired lease; a hub gives a run up only once its lease expired, and ends it', async () => {
  const [hub, worker] = await twoHubs();
  try {
    const projectId = (await hub.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    await pending(hub, projectId);
    const run = (await worker.cluster.claimNext('w1', { pid: 1, token: 'a' }, 400))!;
    const held = { workerId: 'w1', epoch: run.lease_epoch };
    const stale = { workerId: 'w1', epoch: run.lease_epoch - 1 };
    const stranger = { workerId: 'w2', epoch: run.lease_epoch };
    // Under the lease held: accepted.
    assert.is((await worker.runs.update(run.id, { progress_current: 1, log_size: 10 }, held))?.log_size, 10);
    // Under a stale epoch or another worker's name: refused, nothing changed.
    for (const fence of [stale, stranger]) {
      assert.is(await worker.runs.update(run.id, { log_size: 99 }, fence), null, `update under ${JSON.stringify(fence)}`);
      assert.is(await worker.runs.settle(run.id, { status: 'completed' }, fence), null, `settle under ${JSON.stringify(fence)}`);
    }
    // A hub may not give it up while the lease holds.
    assert.is(await hub.runs.settle(run.id, { status: 'failed', error_message: 'worker lost' }, { ...held, expired: true }), null, 'not given up before it expires');
    assert.is((await hub.runs.get(run.id))!.status, 'running');
    assert.is((await hub.runs.get(run.id))!.log_size, 10);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Expired (database time): the holder's own writes are refused too.
    assert.is(await worker.runs.update(run.id, { log_size: 20 }, held), null, 'an update under an expired lease');
    assert.is(await worker.runs.settle(run.id, { status: 'completed' }, held), null, 'an end under an expired lease');
    const given = await hub.runs.settle(run.id, { status: 'failed', error_message: 'worker lost' }, { ...held, expired: true });
    assert.is(given?.status, 'failed', 'given up once expired');
    assert.is((given as unknown as { lease_epoch: number }).lease_epoch, run.lease_epoch + 1, 'the epoch moves on: the lease is over');
    assert.is(await worker.runs.update(run.id, { log_size: 30 }, held), null);
    assert.is((await hub.runs.get(run.id))!.log_size, 10, 'no write under the lost lease got in');
  } finally {
    await Promise.all([hub.close(), worker.close()]);
  }
});

test('work notices name their run: claim when queued, claimed when it starts, claim of the next on an end that frees its project, cancel to its worker', async () => {
  const url = await postgres.createDatabase();
  const store = await openPostgresStore(url);
  const admin = new pg.Client({ ...postgres.admin, database: new URL(url).pathname.slice(1) });
  const heard: string[] = [];
  try {
    await admin.connect();
    admin.on('notification', (message) => heard.push(message.payload ?? ''));
    await admin.query('LISTEN hub_work');
    const hear = async (payload: string) => {
      await waitFor(() => heard.includes(payload), `the notice ${payload} (heard: ${heard.join(' ')})`, 5000, 10);
    };
    const projectId = (await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    const first = await pending(store, projectId);
    const second = await pending(store, projectId);
    await hear(`claim:${first.id}`);
    await hear(`claim:${second.id}`);
    const claimed = await store.cluster.claimNext('w1', { pid: 1, token: 't' }, LEASE_MS);
    assert.is(claimed?.id, first.id);
    await hear(`claimed:${first.id}`);
    assert.ok(await store.cluster.requestCancel(first.id));
    await hear('cancel:w1');
    heard.length = 0;
    await store.runs.settle(first.id, { status: 'cancelled' });
    await hear(`claim:${second.id}`);
    assert.equal(heard, [`claim:${second.id}`], 'nothing else');
  } finally {
    await admin.end().catch(() => {});
    await store.close();
  }
});

test.after(() => postgres.stop());

test.run();
