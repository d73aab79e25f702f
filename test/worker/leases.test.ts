import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openPostgresStore } from '../../server/store/postgres/store.js';
import { LEASE_SAFE_FRACTION, WorkerLeases } from '../../server/worker/leases.js';
import { startPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/hub.js';

const postgres = await startPostgres();
const silent = pino({ level: 'silent' });

async function setUp(runs: number) {
  const store = await openPostgresStore(await postgres.createDatabase());
  const ids: number[] = [];
  for (let i = 0; i < runs; i++) {
    const project = await store.projects.insert({ name: `p${i}`, doc_root: '/tmp', pipeline: 'p', settings: {} });
    ids.push((await store.runs.insert({ project_id: project.id, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null })).id);
  }
  return { store, ids };
}

test('a renewal tells the worker which leases it lost (given up by a hub, or ended) and keeps the others', async () => {
  const { store, ids } = await setUp(3);
  const lost: number[] = [];
  const leases = new WorkerLeases(store.cluster, 'w1', 300, { lost: (runId) => lost.push(runId) }, silent);
  try {
    for (let i = 0; i < ids.length; i++) {
      const sent = performance.now();
      const run = (await store.cluster.claimNext('w1', { pid: 1, token: `t${i}` }, 300))!;
      leases.hold(run.id, run.lease_epoch, sent);
    }
    const [kept, givenUp, ended] = ids;
    await new Promise((resolve) => setTimeout(resolve, 350)); // all three expired (database time)
    // A hub gives one up; another run the worker has ended itself (its lease not renewed, nothing to stop).
    assert.ok(await store.runs.settle(givenUp, { status: 'failed', error_message: 'worker lost' }, { workerId: 'w1', epoch: 1, expired: true }));
    leases.ending(ended);
    await store.runs.settle(ended, { status: 'completed' });
    // The kept one's lease made current again (as if its last renewal had come in time).
    await store.query("UPDATE runs SET lease_expires_at = now() + interval '10 s' WHERE id = $1", [kept]);
    await leases.renew();
    assert.equal(lost, [givenUp], 'the run a hub gave up is lost; the ended one is let go quietly');
    assert.ok(leases.holds(kept) && !leases.holds(givenUp) && !leases.holds(ended));
  } finally {
    leases.close();
    await store.close();
  }
});

test('renewals that get no answer (PostgreSQL frozen): the worker gives its leases up by its own clock at 2/3 of the lease, before the database lets them expire', async () => {
  const LEASE_MS = 900;
  const { store, ids } = await setUp(1);
  const lost: { runId: number; at: number }[] = [];
  const leases = new WorkerLeases(store.cluster, 'w1', LEASE_MS, { lost: (runId) => lost.push({ runId, at: performance.now() }) }, silent);
  let frozen = false;
  try {
    const sent = performance.now();
    const run = (await store.cluster.claimNext('w1', { pid: 1, token: 't' }, LEASE_MS))!;
    leases.hold(run.id, run.lease_epoch, sent);
    leases.start();
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS)); // renewed meanwhile: still held
    assert.equal(lost, [], 'renewed while the database answers');
    postgres.signal('SIGSTOP');
    frozen = true;
    const frozenAt = performance.now();
    await waitFor(() => lost.length > 0, 'the lease given up', 5000, 5);
    // Frozen past the lease: renewals sent before the worker let go land after it, and must renew nothing.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
    postgres.signal('SIGCONT');
    frozen = false;
    const after = lost[0].at - frozenAt;
    assert.equal(lost.map((entry) => entry.runId), ids);
    assert.ok(after <= LEASE_MS * LEASE_SAFE_FRACTION + 100, `given up ${Math.round(after)} ms into the freeze (at most 2/3 of ${LEASE_MS} ms after the last renewal)`);
    // By the database's clock the lease still had time left when the worker let go.
    const { rows } = (await store.query('SELECT extract(epoch FROM lease_expires_at - now()) * 1000 AS left_ms FROM runs WHERE id = $1', [run.id])) as { rows: { left_ms: string }[] };
    const leftAtGivingUp = Number(rows[0].left_ms) + (performance.now() - lost[0].at);
    assert.ok(leftAtGivingUp > 0 && leftAtGivingUp < LEASE_MS, `the lease had ${Math.round(leftAtGivingUp)} ms left when the worker let go (and no late renewal brought it back)`);
    process.stdout.write(`  (given up ${Math.round(after)} ms into the freeze, with ${Math.round(leftAtGivingUp)} ms of the lease left by the database's clock)\n`);
  } finally {
    if (frozen) postgres.signal('SIGCONT');
    leases.close();
    await store.close();
  }
});

test.after(() => postgres.stop());

test.run();
