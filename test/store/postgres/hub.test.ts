import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, sh, startHub, waitForRun } from '../../helpers/hub.js';
import { startPostgres } from '../../helpers/postgres.js';
import { TestClient } from '../../helpers/wsClient.js';

test('the hub on PostgreSQL (HUB_DATABASE_URL): runs start, queue, complete and are followed live; a restart finds them', async () => {
  const postgres = await startPostgres();
  const pipelines = { p: { steps: [{ name: 'a', command: sh('for i in 1 2 3; do echo "pg $i"; sleep 0.2; done') }], scopes: { all: 'a' } } };
  const env = { HUB_DATABASE_URL: await postgres.createDatabase() };
  const hub = await startHub({ pipelines, env });
  try {
    const projectId = await createProject(hub, 'p');
    const first = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const second = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
    assert.equal([first.status, second.status], ['running', 'pending']);
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: first.id, offset: 0 });
    assert.is((await client.complete(first.id)).status, 'completed');
    assert.equal(client.linesOf(first.id, 0).lines.filter((line) => line.startsWith('pg ')), ['pg 1', 'pg 2', 'pg 3']);
    await waitForRun(hub, projectId, second.id, ['completed']);
    await client.close();
    await hub.stop();
    const again = await startHub({ pipelines, env, dir: hub.dir });
    try {
      const runs = (await again.api('GET', `/api/projects/${projectId}/runs`)).body;
      assert.equal(runs.map((run: { id: number; status: string }) => [run.id, run.status]), [[second.id, 'completed'], [first.id, 'completed']]);
      assert.is(typeof runs[0].log_size, 'number');
      // The same JSON as on SQLite: nothing the cluster's tables add.
      assert.equal(Object.keys(runs[0]).sort(), ['created_at', 'current_step', 'error_message', 'exit_code', 'finished_at', 'id', 'log_path', 'log_size', 'progress_current', 'progress_total', 'project_id', 'scope', 'signal', 'started_at', 'status', 'steps', 'triggered_by']);
    } finally {
      await again.stop();
    }
  } finally {
    await hub.stop();
    await postgres.stop();
  }
});

test.run();
