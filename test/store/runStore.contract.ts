import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HubError } from '../../server/errors.js';
import type { Store } from '../../server/store/store.js';

/**
 * What every Store must do, whatever the database: run it against each implementation
 * (`runStoreContract('sqlite', open)`). Each test gets a fresh, empty store.
 */
export function runStoreContract(name: string, open: () => Promise<Store>, done?: () => Promise<void>): void {
  const contract = suite<{ store: Store }>(`store contract: ${name}`);
  contract.before.each(async (context) => {
    context.store = await open();
  });
  contract.after.each(async ({ store }) => store.close());
  if (done) contract.after(done);

  const project = (store: Store, name = `p${Math.random().toString(36).slice(2)}`) =>
    store.projects.insert({ name, doc_root: '/tmp', pipeline: 'p', settings: { model: 'm' } });
  const pending = (store: Store, projectId: number) =>
    store.runs.insert({ project_id: projectId, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 2, plan: '[{"name":"a"}]' });

  contract('a project round-trips, with its settings; a second one of the same name is 409 name_taken, even at once', async ({ store }) => {
    const created = await project(store, 'alpha');
    assert.equal(await store.projects.get(created.id), created);
    assert.equal((await store.projects.findByName('alpha'))?.id, created.id);
    assert.equal(created.settings, { model: 'm' });
    const tries = await Promise.allSettled([project(store, 'beta'), project(store, 'beta'), project(store, 'beta')]);
    assert.is(tries.filter((t) => t.status === 'fulfilled').length, 1);
    for (const t of tries) if (t.status === 'rejected') assert.ok(t.reason instanceof HubError && t.reason.status === 409 && t.reason.code === 'name_taken');
    const updated = await store.projects.update(created.id, { settings: { other: 'x' } });
    assert.equal(updated?.settings, { other: 'x' });
    assert.is(updated?.name, 'alpha');
  });

  contract('runs queue per project in order of creation; only active ones are listed as active', async ({ store }) => {
    const a = await project(store);
    const b = await project(store);
    const first = await pending(store, a.id);
    const other = await pending(store, b.id);
    const second = await pending(store, a.id);
    assert.equal((await store.runs.listActiveForProject(a.id)).map((r) => r.id), [first.id, second.id]);
    assert.equal((await store.runs.listActive()).map((r) => r.id), [first.id, other.id, second.id]);
    assert.is(first.status, 'pending');
    assert.is(first.plan, '[{"name":"a"}]');
    await store.runs.settle(first.id, { status: 'cancelled' });
    assert.equal((await store.runs.listActiveForProject(a.id)).map((r) => r.id), [second.id]);
    assert.equal((await store.runs.listForProject(a.id, 10)).map((r) => r.id), [second.id, first.id], 'newest first');
    assert.equal((await store.runs.listForProject(a.id, 10, second.id)).map((r) => r.id), [first.id], 'paged by id');
    assert.equal(await store.runs.ownedOf(a.id, [first.id, other.id, second.id, second.id + 1000]), new Set([first.id, second.id]), 'of the ids asked about, the project\'s');
    assert.equal(await store.runs.ownedOf(b.id, []), new Set());
    assert.equal(await store.runs.countByStatus(), { pending: 2, running: 0, completed: 0, failed: 0, cancelled: 1 });
  });

  contract('insertIfIdle: only when the project has no active run; of 20 at once exactly one gets in, on any connection (9 rounds)', async ({ store }) => {
    const p = await project(store);
    const other = await project(store);
    const record = (projectId: number) => ({ project_id: projectId, scope: 'all', status: 'pending' as const, triggered_by: 'test', progress_total: 1, plan: null });
    // Rounds on fresh projects, as a race lost once in a while must still fail this test.
    for (let round = 0; round < 8; round++) {
      const fresh = await project(store);
      const tries = await Promise.all(Array.from({ length: 20 }, () => store.runs.insertIfIdle(record(fresh.id))));
      assert.is(tries.filter((run) => run !== null).length, 1, `round ${round}`);
    }
    const tries = await Promise.all(Array.from({ length: 20 }, () => store.runs.insertIfIdle(record(p.id))));
    const inserted = tries.filter((run) => run !== null);
    assert.is(inserted.length, 1);
    assert.equal((await store.runs.listActiveForProject(p.id)).map((r) => r.id), [inserted[0]!.id]);
    assert.ok(await store.runs.insertIfIdle(record(other.id)), 'another project is not held up');
    await store.runs.claim(inserted[0]!.id, { runner_pid: 1 });
    assert.is(await store.runs.insertIfIdle(record(p.id)), null, 'not while one runs');
    await store.runs.settle(inserted[0]!.id, { status: 'completed' });
    assert.is((await store.runs.insertIfIdle(record(p.id)))?.status, 'pending', 'again once it ended');
  });

  contract('webhook deliveries: one per webhook, run and event, even at once; leased to one taker; an outcome is written only under its holder\'s lease; listed newest first', async ({ store }) => {
    const p = await project(store);
    const hook = await store.webhooks.insert({ project_id: p.id, url: 'http://example.com/', secret: 's', events: ['run.completed'] });
    assert.equal((await store.webhooks.list(p.id)).map((h) => h.events), [['run.completed']]);
    const later = (ms: number) => new Date(Date.now() + ms).toISOString();
    // The store's clock (the one leases are reckoned by) is this machine's here.
    const clock = await store.webhooks.clock();
    assert.ok(Math.abs(clock - Date.now()) < 5000, `the store's clock reads ${new Date(clock).toISOString()}`);
    const delivery = { webhook_id: hook.id, run_id: 7, event: 'run.completed' as const, payload: '{}' };
    const tries = await Promise.all(Array.from({ length: 10 }, () => store.webhooks.createDelivery(delivery, later(60_000), later(0))));
    const created = tries.filter((d) => d !== null);
    assert.is(created.length, 1);
    assert.is(created[0]!.status, 'pending');
    assert.equal(await store.webhooks.leaseDue(later(0), later(60_000), 10), [], 'leased to its creator');
    const failedTry = { status: 'pending', tries: 1, last_status: 500, last_error: 'HTTP 500', next_attempt_at: later(-1000), leased_until: later(-500) } as const;
    assert.ok(await store.webhooks.recordAttempt(created[0]!.id, created[0]!.leased_until!, failedTry, later(0)), 'written under its holder\'s lease');
    const takers = await Promise.all(Array.from({ length: 5 }, () => store.webhooks.leaseDue(later(0), later(120_000), 10)));
    assert.is(takers.flat().length, 1, 'a lapsed lease goes to one taker');
    const taken = takers.flat()[0]!;
    // The first holder's late write (a store that refused it until the lease ran out) must not undo the taker's outcome.
    assert.ok(await store.webhooks.recordAttempt(taken.id, taken.leased_until!, { status: 'delivered', tries: 2, last_status: 200, last_error: null, next_attempt_at: taken.next_attempt_at, leased_until: null }, later(0)));
    assert.not.ok(await store.webhooks.recordAttempt(taken.id, failedTry.leased_until, { ...failedTry, tries: 2 }, later(0)), 'refused under a lease taken over');
    assert.not.ok(await store.webhooks.recordAttempt(taken.id, taken.leased_until!, { ...failedTry, tries: 3 }, later(0)), 'nor under one that ended');
    const [listed] = await store.webhooks.listDeliveries(hook.id, 10);
    assert.equal({ status: listed.status, tries: listed.tries, last_status: listed.last_status, last_error: listed.last_error }, { status: 'delivered', tries: 2, last_status: 200, last_error: null });
    assert.ok(await store.webhooks.delete(hook.id));
    assert.equal(await store.webhooks.listDeliveries(hook.id, 10), [], 'its deliveries go with it');
  });

  contract('a claim starts a pending run once, with its runner; one running run per project, enforced by the store', async ({ store }) => {
    const p = await project(store);
    const first = await pending(store, p.id);
    const second = await pending(store, p.id);
    const claimed = await store.runs.claim(first.id, { runner_pid: 42, runner_token: 't', started_at: 'now' });
    assert.is(claimed?.status, 'running');
    assert.is(claimed?.runner_pid, 42);
    assert.is(await store.runs.claim(first.id, { runner_pid: 43 }), null, 'not twice');
    assert.is(await store.runs.claim(second.id, { runner_pid: 44 }), null, 'not while another of the project runs');
    assert.is((await store.runs.get(second.id))?.status, 'pending');
    const other = await pending(store, (await project(store)).id);
    assert.is((await store.runs.claim(other.id, {}))?.status, 'running', 'another project is not held up');
    const all = await Promise.all([store.runs.claim(second.id, {}), store.runs.claim(second.id, {})]);
    assert.is(all.filter(Boolean).length, 0);
    await store.runs.settle(first.id, { status: 'completed', exit_code: 0 });
    const racing = await Promise.all([store.runs.claim(second.id, { runner_pid: 1 }), store.runs.claim(second.id, { runner_pid: 2 })]);
    assert.is(racing.filter(Boolean).length, 1, 'two claims at once: one wins');
  });

  contract('settling records a terminal state once; later settles change nothing', async ({ store }) => {
    const p = await project(store);
    const run = await pending(store, p.id);
    await store.runs.claim(run.id, {});
    const done = await store.runs.settle(run.id, { status: 'failed', exit_code: 3, error_message: 'x', log_size: 10 });
    assert.equal([done?.status, done?.exit_code, done?.log_size], ['failed', 3, 10]);
    assert.is(await store.runs.settle(run.id, { status: 'completed' }), null);
    assert.is((await store.runs.get(run.id))?.status, 'failed');
    const updated = await store.runs.update(run.id, { current_step: 'b' });
    assert.is(updated.current_step, 'b');
  });

  contract('deleting a project removes its runs; deleting a run removes it', async ({ store }) => {
    const p = await project(store);
    const run = await pending(store, p.id);
    const kept = await pending(store, p.id);
    await store.runs.delete(run.id);
    assert.is(await store.runs.get(run.id), undefined);
    assert.ok(await store.projects.delete(p.id));
    assert.is(await store.runs.get(kept.id), undefined);
    assert.not.ok(await store.projects.delete(p.id));
  });

  contract.run();
}
