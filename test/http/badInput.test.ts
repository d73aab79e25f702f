import fs from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, shellPipeline, startHub, waitForRun, type TestHub } from '../helpers/hub.js';
import { setUp } from '../helpers/setup.js';
import { cases, projectCases } from './badInputCases.js';

const P = '/api/projects';
const tmp = fs.realpathSync('/tmp');
const bad = suite<{ hub: TestHub; projectId: number; runId: number }>('bad input over HTTP');

setUp(bad, async (context) => {
  context.hub = await startHub({ pipelines: { p: shellPipeline({ a: 'echo a' }) } });
  context.projectId = await createProject(context.hub, 'p', 'taken');
  const { body } = await context.hub.api('POST', `/api/projects/${context.projectId}/runs`, { scope: 'all' });
  context.runId = body.id;
  await waitForRun(context.hub, context.projectId, body.id, ['completed']);
});
bad.after(async ({ hub }) => hub.stop());

bad('every bad request gets its documented status and error code, naming the field', async ({ hub, projectId, runId }) => {
  for (const [method, path, body, status, code, field, headers] of [...cases, ...projectCases(projectId, runId)]) {
    const response = await hub.api(method, path, body, headers);
    const label = `${method} ${path.slice(0, 60)} ${JSON.stringify(body)?.slice(0, 60)}`;
    assert.is(response.status, status, `${label}: status ${response.status} ${JSON.stringify(response.body)}`);
    assert.is(response.body?.error?.code, code, `${label}: ${JSON.stringify(response.body)}`);
    assert.type(response.body.error.message, 'string');
    if (field) assert.is(response.body.error.field, field, label);
  }
  assert.is((await hub.api('GET', '/api/health')).status, 200);
  assert.is((await hub.api('GET', `${P}/${projectId}`)).body.name, 'taken', 'nothing was changed by bad input');
  assert.not.match(hub.output(), /RangeError|request failed/, 'no bad request is logged as a server error');
});

bad('a valid project round-trips through create, patch and get', async ({ hub }) => {
  const created = await hub.api('POST', P, { name: 'ok', doc_root: tmp, pipeline: 'p', settings: { llm_provider: 'x' } });
  assert.is(created.status, 201);
  const patched = await hub.api('PATCH', `${P}/${created.body.id}`, { settings: { llm_model: 'm' } });
  assert.equal(patched.body.settings, { llm_model: 'm' });
  assert.is(patched.body.name, 'ok');
  const pipelines = await hub.api('GET', '/api/pipelines');
  assert.equal(pipelines.body, [{ name: 'p', steps: [{ name: 'a', timeout_s: null }], scopes: [{ name: 'all', first_step: 'a' }, { name: 'from_a', first_step: 'a' }] }]);
});

bad.run();
