import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, isAlive, shellPipeline, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';

const lifecycle = suite<{ hub: TestHub }>('run lifecycle');

lifecycle.before(async (context) => {
  context.hub = await startHub({
    pipelines: {
      three: shellPipeline({
        one: 'echo "one $HUB_RUN_ID $HUB_PROJECT_ID $HUB_SCOPE $HUB_STEP $HUB_SETTING_LLM_MODEL $PYTHONUNBUFFERED"; sleep 0.3',
        two: 'echo two; echo to-stderr >&2; sleep 0.3',
        three: 'echo three',
      }),
      failing: shellPipeline({ ok: 'echo fine', bad: 'echo about to fail; exit 3', never: 'echo never' }),
      slow: shellPipeline({ wait: 'sleep 30' }, { wait: { timeout_s: 0.5 } }),
      forever: shellPipeline({
        spawn: 'sleep 300 & echo $! > "$HUB_OUTPUT_DIR/child.pid"; setsid sleep 301 & echo $! > "$HUB_OUTPUT_DIR/escaped.pid"; echo started; wait',
      }),
      quick: shellPipeline({ q: 'sleep 0.4; echo quick $HUB_RUN_ID' }),
    },
  });
});
lifecycle.after(async ({ hub }) => hub.stop());

lifecycle('a run goes pending → running → completed with timestamps, progress, env and its whole log', async ({ hub }) => {
  const projectId = await createProject(hub, 'three');
  const created = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', triggered_by: 'test' });
  assert.is(created.status, 201);
  assert.is(created.body.triggered_by, 'test');
  assert.ok(['pending', 'running'].includes(created.body.status));
  assert.is(created.body.progress_total, 3);
  assert.is(created.body.log_path, `${projectId}/${created.body.id}.log`);
  const seen = new Set<string>();
  const done = await waitFor(async () => {
    const { body } = await hub.api('GET', `/api/projects/${projectId}/runs/${created.body.id}`);
    seen.add(`${body.status}:${body.current_step}:${body.progress_current}`);
    return body.status === 'completed' ? body : null;
  }, 'the run to complete');
  assert.ok(seen.has('running:one:0'), `saw ${[...seen]}`);
  assert.ok(seen.has('running:two:1'), `saw ${[...seen]}`);
  assert.is(done.progress_current, 3);
  assert.is(done.exit_code, 0);
  assert.is(done.error_message, null);
  assert.ok(Date.parse(done.created_at) <= Date.parse(done.started_at));
  assert.ok(Date.parse(done.started_at) <= Date.parse(done.finished_at));
  const log = fs.readFileSync(path.join(hub.dir, 'logs', done.log_path), 'utf8');
  assert.is(done.log_size, Buffer.byteLength(log));
  assert.match(log, `one ${done.id} ${projectId} all one test-model 1\n`);
  assert.match(log, /\[hub\] step 2\/3: two\ntwo\nto-stderr\n/);
  assert.match(log, /\[hub\] run completed\n$/);
  // Each step's part of the log, by byte offsets: its header line, then its output.
  assert.equal(done.steps.map((s: { name: string; status: string; exit_code: number }) => [s.name, s.status, s.exit_code]), [['one', 'completed', 0], ['two', 'completed', 0], ['three', 'completed', 0]]);
  const bytes = fs.readFileSync(path.join(hub.dir, 'logs', done.log_path));
  const part = (step: { log_start: number; log_end: number }) => bytes.subarray(step.log_start, step.log_end).toString();
  assert.is(part(done.steps[1]), '[hub] step 2/3: two\ntwo\nto-stderr\n');
  assert.is(done.steps[0].log_end, done.steps[1].log_start, 'the parts follow each other');
  assert.ok(done.steps.every((s: { started_at: string; finished_at: string }) => Date.parse(s.started_at) <= Date.parse(s.finished_at)));
});

lifecycle('a failing step fails the run with its name and exit code, and later steps do not run', async ({ hub }) => {
  const projectId = await createProject(hub, 'failing');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const run = await waitForRun(hub, projectId, body.id, ['failed']);
  assert.is(run.exit_code, 3);
  assert.is(run.error_message, 'Step "bad" exited with code 3');
  assert.is(run.progress_current, 1);
  const log = fs.readFileSync(path.join(hub.dir, 'logs', run.log_path), 'utf8');
  assert.not.match(log, 'never');
  assert.equal(run.steps.map((s: { name: string; status: string; exit_code: number | null }) => [s.name, s.status, s.exit_code]), [['ok', 'completed', 0], ['bad', 'failed', 3], ['never', 'pending', null]]);
  assert.is(run.steps[2].log_start, null, 'a step not reached has no part of the log');
});

lifecycle('from_step re-runs a pipeline from a named step to the end, recorded as scope "from:<step>"', async ({ hub }) => {
  const projectId = await createProject(hub, 'three');
  const { status, body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { from_step: 'two' });
  assert.is(status, 201);
  assert.is(body.scope, 'from:two');
  assert.is(body.progress_total, 2);
  const run = await waitForRun(hub, projectId, body.id, ['completed']);
  const log = fs.readFileSync(path.join(hub.dir, 'logs', run.log_path), 'utf8');
  assert.not.match(log, /^one /m);
  assert.match(log, /\[hub\] step 1\/2: two\ntwo\n/);
  assert.match(log, /\nthree\n/);
  const unknown = await hub.api('POST', `/api/projects/${projectId}/runs`, { from_step: 'four' });
  assert.is(unknown.status, 400);
  assert.equal(unknown.body.error.valid_steps, ['one', 'two', 'three']);
});

lifecycle('while a step runs its log_end is null and later steps are pending; a queued run lists its plan\'s steps as pending', async ({ hub }) => {
  const projectId = await createProject(hub, 'quick');
  const { body: first } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const { body: queued } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' });
  assert.equal(queued.steps.map((s: { name: string; status: string }) => [s.name, s.status]), [['q', 'pending']]);
  const running = await waitFor(async () => {
    const { body } = await hub.api('GET', `/api/projects/${projectId}/runs/${first.id}`);
    return body.steps[0].status === 'running' ? body : null;
  }, 'the step to run');
  assert.is(running.steps[0].log_end, null);
  assert.is(running.steps[0].log_start, 0);
  await waitForRun(hub, projectId, queued.id, ['completed']);
});

lifecycle('a step past its timeout_s fails the run', async ({ hub }) => {
  const projectId = await createProject(hub, 'slow');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const run = await waitForRun(hub, projectId, body.id, ['failed', 'completed']);
  assert.is(run.status, 'failed');
  assert.is(run.error_message, 'Step "wait" timed out after 0.5 s');
});

lifecycle('cancel ends the run as cancelled and kills the step, its grandchild and a setsid escapee', async ({ hub }) => {
  const projectId = await createProject(hub, 'forever');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const outputs = path.join(hub.dir, 'data', 'outputs', String(projectId));
  const pids: number[] = await waitFor(() => {
    const read = (name: string) => Number(fs.readFileSync(path.join(outputs, name), 'utf8'));
    const found = [read('child.pid'), read('escaped.pid')];
    return found.every((pid) => pid > 0 && isAlive(pid)) ? found : null;
  }, 'the step to start its children');
  const cancel = await hub.api('DELETE', `/api/projects/${projectId}/runs/${body.id}`);
  assert.is(cancel.status, 202);
  const run = await waitForRun(hub, projectId, body.id, ['cancelled', 'failed', 'completed']);
  assert.is(run.status, 'cancelled');
  assert.ok(run.finished_at);
  await waitFor(() => pids.every((pid) => !isAlive(pid)), 'every process of the run to be gone', 5000);
  const again = await hub.api('DELETE', `/api/projects/${projectId}/runs/${body.id}`);
  assert.is(again.status, 409);
  assert.is(again.body.error.code, 'run_finished');
});

lifecycle('a busy project answers 409 with the active run, or queues FIFO with if_busy=queue', async ({ hub }) => {
  const projectId = await createProject(hub, 'quick');
  const first = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const busy = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  assert.is(busy.status, 409);
  assert.is(busy.body.error.code, 'run_active');
  assert.is(busy.body.error.active_run_id, first.body.id);
  const second = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' });
  const third = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' });
  const fourth = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' });
  assert.is(second.status, 201);
  assert.is(second.body.status, 'pending');
  const current = await hub.api('GET', `/api/projects/${projectId}/runs/current`);
  assert.is(current.body.id, first.body.id);
  const cancelled = await hub.api('DELETE', `/api/projects/${projectId}/runs/${third.body.id}`);
  assert.is(cancelled.status, 202);
  assert.is(cancelled.body.status, 'cancelled');
  const runs = await Promise.all([first, second, fourth].map((r) => waitForRun(hub, projectId, r.body.id, ['completed'])));
  assert.ok(Date.parse(runs[0].finished_at) <= Date.parse(runs[1].started_at), 'second starts after first ends');
  assert.ok(Date.parse(runs[1].finished_at) <= Date.parse(runs[2].started_at), 'fourth starts after second ends');
  const none = await hub.api('GET', `/api/projects/${projectId}/runs/current`);
  assert.is(none.body, null);
  const list = await hub.api('GET', `/api/projects/${projectId}/runs?limit=2`);
  assert.equal(list.body.map((r: { id: number }) => r.id), [fourth.body.id, third.body.id]);
  const page = await hub.api('GET', `/api/projects/${projectId}/runs?limit=2&before=${third.body.id}`);
  assert.equal(page.body.map((r: { id: number }) => r.id), [second.body.id, first.body.id]);
});

lifecycle('projects are isolated: a run under another project is 404', async ({ hub }) => {
  const a = await createProject(hub, 'quick');
  const b = await createProject(hub, 'quick');
  const { body } = await hub.api('POST', `/api/projects/${a}/runs`, { scope: 'all' });
  assert.is((await hub.api('GET', `/api/projects/${b}/runs/${body.id}`)).status, 404);
  assert.is((await hub.api('DELETE', `/api/projects/${b}/runs/${body.id}`)).status, 404);
  assert.is((await hub.api('DELETE', `/api/projects/${a}`)).status, 409);
  await waitForRun(hub, a, body.id, ['completed']);
  const purge = await hub.api('DELETE', `/api/projects/${a}/runs/${body.id}?purge=true`);
  assert.is(purge.status, 204);
  assert.not.ok(fs.existsSync(path.join(hub.dir, 'logs', String(a), `${body.id}.log`)));
  assert.is((await hub.api('GET', `/api/projects/${a}/runs/${body.id}`)).status, 404);
  assert.is((await hub.api('DELETE', `/api/projects/${a}`)).status, 204);
});

lifecycle.run();
