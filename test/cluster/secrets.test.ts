import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, waitForRun } from '../helpers/hub.js';
import { startCluster, startWorker } from '../helpers/cluster.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

const SECRET = 'cluster-secret-7f3a$x';
const PIPELINES = {
  leaky: { steps: [{ name: 'call', command: nodeStep(`console.log('calling with ' + process.env.API_KEY + ' ' + Buffer.from(process.env.API_KEY).toString('base64'))`) }], scopes: { all: 'call' } },
};

test('cluster: a secret set through a hub is stored sealed in PostgreSQL, opened by the worker for its step, and masked in the log the hubs serve', async () => {
  const key = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-key-')), 'secret.key');
  const cluster = await startCluster({ pipelines: PIPELINES, hubs: 1, workers: 1, env: { HUB_SECRET_KEY_FILE: key } });
  const [hub] = cluster.hubs;
  try {
    const projectId = await createProject(hub, 'leaky');
    assert.is((await hub.api('PUT', `/api/projects/${projectId}/secrets/API_KEY`, { value: SECRET })).status, 201);
    const client = new pg.Client({ connectionString: cluster.env.HUB_DATABASE_URL });
    await client.connect();
    const { rows } = await client.query<{ sealed: string }>('SELECT sealed FROM project_secrets WHERE project_id = $1', [projectId]);
    await client.end();
    assert.is(rows.length, 1);
    assert.ok(rows[0].sealed.startsWith('v1:') && !rows[0].sealed.includes(SECRET), 'PostgreSQL holds the sealed value only');

    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const run = await waitForRun(hub, projectId, body.id, ['completed', 'failed'], 20_000);
    assert.is(run.status, 'completed', run.error_message);
    const raw = await hub.api('GET', `/api/projects/${projectId}/runs/${body.id}/logs/raw`);
    assert.ok(String(raw.body).includes('calling with [MASKED] [MASKED]\n'), String(raw.body));
    assert.not.ok(String(raw.body).includes(SECRET));

    // A worker with another key cannot open it: the run fails at its start, saying why.
    cluster.workers[0].process.kill('SIGKILL');
    cluster.workers.push(await startWorker({ ...cluster.env, HUB_SECRET_KEY_FILE: path.join(path.dirname(key), 'other.key') }, 'w-other'));
    const second = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const failed = await waitForRun(hub, projectId, second.id, ['completed', 'failed'], 30_000);
    assert.is(failed.status, 'failed');
    assert.match(failed.error_message, /Secret API_KEY of project \d+ does not open with this key/);
  } finally {
    await cluster.stop();
  }
});

test.run();
