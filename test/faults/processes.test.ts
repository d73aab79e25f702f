import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, sh, startHub, waitForRun, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';
import { setUp } from '../helpers/setup.js';

const LOG_LIMIT = 4 * 1024 * 1024;
const one = (command: string[]) => ({ steps: [{ name: 'step', command }], scopes: { all: 'step' } });

const faults = suite<{ hub: TestHub }>('process faults');

setUp(faults, async (context) => {
  context.hub = await startHub({
    env: { HUB_MAX_LOG_BYTES: String(LOG_LIMIT), HUB_CANCEL_GRACE_MS: '500' },
    pipelines: {
      exit0: one(sh('exit 0')),
      exit1: one(sh('exit 1')),
      exit137: one(sh('exit 137')),
      exit255: one(sh('exit 255')),
      segv: one(sh('kill -SEGV $$')),
      flood: one(sh('yes "flooding the log with a line that repeats forever"')),
      stubborn: one(sh(`trap '' TERM; echo ignoring TERM; while true; do sleep 0.05; done`)),
      short: one(sh('sleep 0.3; echo done')),
    },
  });
});
faults.after(async ({ hub }) => hub.stop());

async function run(hub: TestHub, pipeline: string) {
  const projectId = await createProject(hub, pipeline);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  return { projectId, runId: body.id as number };
}

faults('exit codes 0, 1, 137, 255 and a SIGSEGV are stored exactly, code and signal', async ({ hub }) => {
  const expected: [string, string, number | null, string | null, string | null][] = [
    ['exit0', 'completed', 0, null, null],
    ['exit1', 'failed', 1, null, 'Step "step" exited with code 1'],
    ['exit137', 'failed', 137, null, 'Step "step" exited with code 137'],
    ['exit255', 'failed', 255, null, 'Step "step" exited with code 255'],
    ['segv', 'failed', null, 'SIGSEGV', 'Step "step" was killed by signal SIGSEGV'],
  ];
  for (const [pipeline, status, code, signal, message] of expected) {
    const { projectId, runId } = await run(hub, pipeline);
    const result = await waitForRun(hub, projectId, runId, ['completed', 'failed']);
    assert.equal([result.status, result.exit_code, result.signal, result.error_message], [status, code, signal, message], pipeline);
  }
});

faults('a log flood past HUB_MAX_LOG_BYTES fails the run with "log limit", a marker line, and a bounded file', async ({ hub }) => {
  const { projectId, runId } = await run(hub, 'flood');
  const result = await waitForRun(hub, projectId, runId, ['completed', 'failed'], 20_000);
  assert.is(result.status, 'failed');
  assert.match(result.error_message, 'log limit');
  const file = path.join(hub.dir, 'logs', result.log_path);
  const size = fs.statSync(file).size;
  assert.ok(size < LOG_LIMIT + 256 * 1024 * 1024, `log stopped near the limit: ${size} bytes`);
  const fd = fs.openSync(file, 'r');
  const tail = Buffer.alloc(400);
  fs.readSync(fd, tail, 0, 400, size - 400);
  fs.closeSync(fd);
  assert.match(tail.toString(), `[hub] log limit reached (${LOG_LIMIT} bytes)`);
  console.log(`  (log flood: stopped at ${(size / 1024 / 1024).toFixed(1)} MiB for a ${LOG_LIMIT / 1024 / 1024} MiB limit)`);
});

faults('a step that ignores SIGTERM is killed after the grace when cancelled', async ({ hub }) => {
  const { projectId, runId } = await run(hub, 'stubborn');
  await waitForRun(hub, projectId, runId, ['running']);
  const file = path.join(hub.dir, 'logs', String(projectId), `${runId}.log`);
  for (let i = 0; i < 100 && !fs.readFileSync(file, 'utf8').includes('ignoring TERM'); i++) await new Promise((r) => setTimeout(r, 20));
  const cancel = await hub.api('DELETE', `/api/projects/${projectId}/runs/${runId}`);
  assert.is(cancel.status, 202);
  const result = await waitForRun(hub, projectId, runId, ['cancelled', 'failed', 'completed'], 10_000);
  assert.is(result.status, 'cancelled');
});

faults('cancel races: many concurrent cancels, cancel after exit, cancel racing the exit: one terminal state, never 500', async ({ hub }) => {
  const { projectId, runId } = await run(hub, 'stubborn');
  const watcher = await TestClient.connect(hub.url);
  watcher.send({ type: 'subscribe', project_id: projectId });
  await waitForRun(hub, projectId, runId, ['running']);
  const answers = await Promise.all(Array.from({ length: 10 }, () => hub.api('DELETE', `/api/projects/${projectId}/runs/${runId}`)));
  assert.ok(answers.every((a) => a.status === 202 || a.status === 409), answers.map((a) => a.status).join());
  await waitForRun(hub, projectId, runId, ['cancelled']);
  assert.is((await hub.api('DELETE', `/api/projects/${projectId}/runs/${runId}`)).status, 409);
  for (const delay of [250, 290, 300, 310, 350]) {
    const racing = await run(hub, 'short');
    watcher.send({ type: 'subscribe', project_id: racing.projectId });
    await new Promise((resolve) => setTimeout(resolve, delay));
    const answer = await hub.api('DELETE', `/api/projects/${racing.projectId}/runs/${racing.runId}`);
    assert.ok(answer.status === 202 || answer.status === 409, `delay ${delay}: ${answer.status}`);
    const result = await waitForRun(hub, racing.projectId, racing.runId, ['completed', 'cancelled', 'failed']);
    assert.ok(['completed', 'cancelled'].includes(result.status), `delay ${delay}: ${result.status} ${result.error_message}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const terminal = new Map<number, string[]>();
  for (const message of watcher.messages) {
    const record = message.run as { id: number; status: string } | undefined;
    if (message.type === 'run' && record && ['completed', 'failed', 'cancelled'].includes(record.status)) terminal.set(record.id, [...(terminal.get(record.id) ?? []), record.status]);
  }
  for (const [id, statuses] of terminal) assert.is(statuses.length, 1, `run ${id} reached a terminal state once: ${statuses}`);
  await watcher.close();
});

faults('a logs folder that cannot be written fails the run with a clear message; the server stays up', async ({ hub }) => {
  const projectId = await createProject(hub, 'exit0');
  fs.writeFileSync(path.join(hub.dir, 'logs', String(projectId)), 'a file where the folder should be');
  const { status, body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  assert.is(status, 201);
  assert.is(body.status, 'failed');
  assert.match(body.error_message, 'The run could not start');
  assert.match(body.error_message, /ENOTDIR|EEXIST/);
  assert.is((await hub.api('GET', '/api/health')).status, 200);
});

faults.run();
