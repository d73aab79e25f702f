import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSqliteStore } from '../../../server/store/sqlite/store.js';
import { sqliteLocker } from '../../helpers/sqliteLock.js';

test('retention that stops between its statements (a crash) never leaves a run without its delivery records: a restarted hub would record its events again and send them under new ids', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-retention-')), 'hub.sqlite');
  const store = await openSqliteStore(file);
  const other = sqliteLocker(file);
  try {
    const project = await store.projects.insert({ name: 'p', doc_root: '/tmp', pipeline: 'p', settings: {} });
    const hook = await store.webhooks.insert({ project_id: project.id, url: 'http://127.0.0.1:9/hook', secret: 's', events: ['run.completed'] });
    const run = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'running', triggered_by: 'test', progress_total: 1, plan: '[]' });
    await store.runs.settle(run.id, { status: 'completed', finished_at: new Date().toISOString() });
    const delivery = await store.webhooks.createDelivery({ webhook_id: hook.id, run_id: run.id, event: 'run.completed', payload: '{}' }, new Date(Date.now() + 60_000).toISOString());
    assert.ok(await store.webhooks.recordAttempt(delivery!.id, delivery!.leased_until!, { status: 'delivered', tries: 1, last_status: 204, last_error: null, next_attempt_at: new Date().toISOString(), leased_until: null }));
    // The process "dies" at the run's delete: whatever went before it is what a crash would leave.
    await other.exec("CREATE TRIGGER crash_here BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'the process died here'); END;");
    await store.retention.deleteFinished(project.id, { maxId: run.id }, 10).then(() => assert.unreachable('the delete went through'), () => {});
    await other.exec('DROP TRIGGER crash_here');
    const left = await store.webhooks.listDeliveries(hook.id, 10);
    assert.ok(await store.runs.get(run.id), 'the run is still there');
    assert.is(left.length, 1, 'and so is its delivery record');
  } finally {
    other.close();
    await store.close();
  }
});

test.run();
