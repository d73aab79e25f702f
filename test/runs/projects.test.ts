import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, logFileOf, sh, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { findProcessesWithEnv } from '../../pipeline-runner/processes.js';

test('deleting a project while a run starts: either the run starts and the delete is 409, or the delete wins and the run is 404; never 500, never a runner left', async () => {
  const hub = await startHub({ pipelines: { long: { steps: [{ name: 'l', command: sh('sleep 30') }], scopes: { all: 'l' } } } });
  try {
    for (let i = 0; i < 12; i++) {
      const projectId = await createProject(hub, 'long');
      const [started, deleted] = await Promise.all([
        hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' }),
        hub.api('DELETE', `/api/projects/${projectId}`),
      ]);
      const pair = `${started.status}/${deleted.status}`;
      assert.ok(pair === '201/409' || pair === '404/204', `run ${started.status}, delete ${deleted.status}: ${JSON.stringify([started.body, deleted.body])}`);
      if (started.status === 201) {
        await hub.api('DELETE', `/api/projects/${projectId}/runs/${started.body.id}`);
        await waitForRun(hub, projectId, started.body.id, ['cancelled']);
      } else {
        await new Promise((resolve) => setTimeout(resolve, 100));
        // Steps of this hub's project carry its output folder (project ids repeat across test hubs).
        assert.equal(findProcessesWithEnv('HUB_OUTPUT_DIR', path.join(hub.dir, 'data', 'outputs', String(projectId))), [], 'no runner for a deleted project');
      }
    }
  } finally {
    await hub.stop();
  }
});

test('two projects created with one name at once: one 201, the others 409 name_taken', async () => {
  const hub = await startHub({ pipelines: { p: { steps: [{ name: 'a', command: sh('true') }], scopes: { all: 'a' } } } });
  try {
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
    const answers = await Promise.all(Array.from({ length: 8 }, () => hub.api('POST', '/api/projects', { name: 'twins', doc_root: docRoot, pipeline: 'p' })));
    assert.equal(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
    for (const answer of answers.filter((a) => a.status === 409)) assert.is(answer.body.error.code, 'name_taken');
  } finally {
    await hub.stop();
  }
});

test('a run queued before the pipelines file changed runs the steps it was created with', async () => {
  const before = { p: { steps: [{ name: 'a', command: sh('sleep 1; echo old-a') }], scopes: { all: 'a' } } };
  const after = { p: { steps: [{ name: 'a', command: sh('echo new-a') }, { name: 'b', command: sh('echo new-b') }], scopes: { all: 'a' } } };
  const hub = await startHub({ pipelines: before });
  const projectId = await createProject(hub, 'p');
  await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const queued = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
  assert.is(queued.status, 'pending');
  await hub.stop();
  const again = await startHub({ pipelines: after, dir: hub.dir });
  try {
    const run = await waitForRun(again, projectId, queued.id, ['completed', 'failed']);
    assert.is(run.status, 'completed');
    assert.is(run.progress_total, 1);
    const log = fs.readFileSync(logFileOf(again, projectId, queued.id), 'utf8');
    assert.match(log, 'old-a');
    assert.not.match(log, 'new-');
    const fresh = (await again.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
    assert.is(fresh.progress_total, 2, 'a new run gets the new pipeline');
    assert.not.ok('plan' in run, 'the plan (commands) is not part of the public run');
  } finally {
    await again.stop();
  }
});

test('a fresh database over a kept logs folder: old run files are moved aside, a new run never appends to them', async () => {
  const pipelines = { p: { steps: [{ name: 'a', command: sh('echo "run of $HUB_RUN_ID"') }], scopes: { all: 'a' } } };
  const hub = await startHub({ pipelines });
  const projectId = await createProject(hub, 'p', 'kept');
  const old = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
  await waitForRun(hub, projectId, old.id, ['completed']);
  const oldText = fs.readFileSync(logFileOf(hub, projectId, old.id), 'utf8');
  await hub.stop();
  fs.rmSync(path.join(hub.dir, 'data'), { recursive: true });
  const again = await startHub({ pipelines, dir: hub.dir });
  try {
    assert.match(again.output(), 'moved aside');
    const sameProject = await createProject(again, 'p', 'kept');
    assert.is(sameProject, projectId, 'ids start again');
    const fresh = (await again.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    assert.is(fresh.id, old.id, 'ids start again');
    await waitForRun(again, projectId, fresh.id, ['completed']);
    const text = fs.readFileSync(logFileOf(again, projectId, fresh.id), 'utf8');
    assert.is(text.split('run of').length - 1, 1, 'only its own output');
    const orphaned = path.join(hub.dir, 'logs', 'orphaned');
    const [stamp] = fs.readdirSync(orphaned);
    assert.is(fs.readFileSync(path.join(orphaned, stamp, String(projectId), `${old.id}.log`), 'utf8'), oldText, 'the old log is kept, moved aside');
  } finally {
    await again.stop();
  }
});

test('steps never see the hub\'s own settings (HUB_TOKEN, HUB_*, PORT, HOST) but keep PATH, API keys and their run variables', async () => {
  const token = 'steps-must-not-see-0123456789';
  const hub = await startHub({ pipelines: { p: { steps: [{ name: 'e', command: ['env'], env: { FROM_PIPELINE: 'yes' } }], scopes: { all: 'e' } } }, env: { HUB_TOKEN: token, SOME_TOOL_API_KEY: 'kept' } });
  const auth = { authorization: `Bearer ${token}` };
  try {
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
    const project = (await hub.api('POST', '/api/projects', { name: 'env', doc_root: docRoot, pipeline: 'p', settings: { llm_model: 'm' } }, auth)).body;
    const run = (await hub.api('POST', `/api/projects/${project.id}/runs`, { scope: 'all' }, auth)).body;
    await waitFor(async () => (await hub.api('GET', `/api/projects/${project.id}/runs/${run.id}`, undefined, auth)).body.status === 'completed', 'the run');
    const names = new Set(fs.readFileSync(logFileOf(hub, project.id, run.id), 'utf8').split('\n').map((line) => line.split('=')[0]));
    for (const hidden of ['HUB_TOKEN', 'PORT', 'HUB_DATA_DIR', 'HUB_LOGS_DIR', 'HUB_PIPELINES', 'HUB_CANCEL_GRACE_MS']) assert.not.ok(names.has(hidden), `${hidden} reached the step`);
    for (const kept of ['PATH', 'SOME_TOOL_API_KEY', 'FROM_PIPELINE', 'HUB_RUN_ID', 'HUB_PROJECT_ID', 'HUB_STEP', 'HUB_SETTING_LLM_MODEL', 'HUB_OUTPUT_DIR', 'HUB_ERROR_FILE', 'HUB_RUN_TOKEN']) assert.ok(names.has(kept), `${kept} is missing`);
    assert.not.match(fs.readFileSync(logFileOf(hub, project.id, run.id), 'utf8'), token);
  } finally {
    await hub.stop();
  }
});

test('a step timeout longer than setTimeout allows (35 days) does not fire at once', async () => {
  const hub = await startHub({ pipelines: { p: { steps: [{ name: 'a', command: sh('sleep 1; echo finished'), timeout_s: 3_000_000 }], scopes: { all: 'a' } } } });
  try {
    const projectId = await createProject(hub, 'p');
    const run = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const done = await waitForRun(hub, projectId, run.id, ['completed', 'failed']);
    assert.is(done.status, 'completed', done.error_message);
  } finally {
    await hub.stop();
  }
});

test.run();
