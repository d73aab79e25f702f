import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openPostgresStore, type PostgresStore } from '../../../server/store/postgres/store.js';
import { startPostgres } from '../../helpers/postgres.js';

const postgres = await startPostgres();

async function twoHubs(): Promise<[PostgresStore, PostgresStore]> {
  const url = await postgres.createDatabase();
  return [await openPostgresStore(url), await openPostgresStore(url)];
}

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
    const claims = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).cluster.claimNext(`worker-${i % 4}`, { pid: 1000 + i, token: `t${i}` })));
    const won = claims.filter((claim) => claim !== null);
    assert.is(won.length, 5, 'one per project');
    assert.equal(won.map((run) => run!.id).sort((x, y) => x - y), [...oldest.values()].sort((x, y) => x - y), 'the oldest of each project');
    for (const run of won) assert.ok(run!.worker_id?.startsWith('worker-') && run!.runner_token?.startsWith('t'));
    assert.is(await a.cluster.claimNext('worker-9', { pid: 1, token: 'x' }), null, 'nothing more may start');
    const first = won[0]!;
    await a.runs.settle(first.id, { status: 'completed' });
    const next = await b.cluster.claimNext('worker-9', { pid: 2, token: 'y' });
    assert.is(next?.project_id, first.project_id, 'its project\'s queue moves on');
    assert.is(next?.id, Math.min(...(await a.runs.listActiveForProject(first.project_id)).map((run) => run.id)));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a worker not seen for the timeout is lost with its runs; cancels asked through any hub reach its worker', async () => {
  const [hub, worker] = await twoHubs();
  try {
    const projectId = (await hub.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    const other = (await hub.projects.insert({ name: 'q', doc_root: '/tmp', pipeline: 'p', settings: {} })).id;
    await pending(hub, projectId);
    await pending(hub, other);
    await worker.cluster.heartbeat('w1');
    await worker.cluster.heartbeat('w2');
    const mine = (await worker.cluster.claimNext('w1', { pid: 1, token: 'a' }))!;
    const theirs = (await worker.cluster.claimNext('w2', { pid: 2, token: 'b' }))!;
    assert.equal(await hub.cluster.runsOfLostWorkers(60_000), []);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await worker.cluster.heartbeat('w2');
    assert.equal((await hub.cluster.runsOfLostWorkers(200)).map((run) => run.id), [mine.id], 'w1 is lost, w2 is not');
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

test.after(() => postgres.stop());

test.run();
