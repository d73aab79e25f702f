import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSqliteStore } from '../../../server/store/sqlite/store.js';

test('a run removed by retention keeps its delivery records until they age out: an event a restarted hub records again for it (its recovery listed the run just before) is a repeat, not a new delivery under a new id', async () => {
  const store = await openSqliteStore(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-retention-')), 'hub.sqlite'));
  try {
    const project = await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} });
    const hook = await store.webhooks.insert({ project_id: project.id, url: 'http://127.0.0.1:9/hook', secret: 's', events: ['run.completed'] });
    const run = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'running', triggered_by: 'test', progress_total: 1, plan: '[]' });
    await store.runs.settle(run.id, { status: 'completed', finished_at: new Date().toISOString() });
    const delivery = { webhook_id: hook.id, run_id: run.id, event: 'run.completed' as const, payload: '{}' };
    const first = await store.webhooks.createDelivery(delivery, new Date(Date.now() + 60_000).toISOString(), new Date().toISOString());
    assert.ok(await store.webhooks.recordAttempt(first!.id, first!.leased_until!, { status: 'delivered', tries: 1, last_status: 204, last_error: null, next_attempt_at: new Date().toISOString(), leased_until: null }, new Date().toISOString()));
    assert.equal((await store.retention.deleteFinished(project.id, { maxId: run.id }, 10)).map((removed) => removed.id), [run.id]);
    assert.is(await store.runs.get(run.id), undefined, 'the run is gone');
    // A hub that listed the run before it went records its event again: a repeat.
    assert.is(await store.webhooks.createDelivery(delivery, new Date(Date.now() + 60_000).toISOString(), new Date().toISOString()), null, 'no second delivery');
  } finally {
    await store.close();
  }
});

test.run();
