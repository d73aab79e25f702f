import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sqliteLocker } from '../helpers/sqliteLock.js';
import { createProject, isAlive, logFileOf, sh, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { fileGate } from '../helpers/fileGate.js';
import { TestClient } from '../helpers/wsClient.js';

// A step that ends only once this file exists: the test decides when its run ends.
const gate = fileGate();

const PIPELINES = {
  // The step knows where the state file is (next to HUB_ERROR_FILE) and damages it mid-run.
  vandal: { steps: [{ name: 'v', command: sh('echo before; printf "{not json" > "${HUB_ERROR_FILE%.error}"; sleep 0.5; : > "${HUB_ERROR_FILE%.error}"; sleep 0.5; echo after') }], scopes: { all: 'v' } },
  slow: { steps: [{ name: 's', command: sh('echo start; sleep 3; echo end') }], scopes: { all: 's' } },
  short: { steps: [{ name: 's', command: sh('echo one; sleep 1.5; echo two') }], scopes: { all: 's' } },
  gated: { steps: [{ name: 's', command: sh(`echo one; ${gate.waitCommand}; echo two`) }], scopes: { all: 's' } },
};

test.after(() => gate.remove());

const stateFileOf = (hub: TestHub, projectId: number, runId: number) => path.join(hub.dir, 'logs', String(projectId), `${runId}.json`);

test('a state file damaged mid-run (not JSON, empty) does not stop the server; the run completes', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  try {
    const projectId = await createProject(hub, 'vandal');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const run = await waitForRun(hub, projectId, body.id, ['completed', 'failed']);
    assert.is(run.status, 'completed', run.error_message);
    assert.is(hub.process.exitCode, null);
    assert.match(hub.output(), 'the runner state file is unreadable');
  } finally {
    await hub.stop();
  }
});

test('a state file damaged while the server was down: the server starts, re-attaches to a live runner, and fails a dead one saying the outcome is unknown', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  const projectId = await createProject(hub, 'slow');
  const live = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id;
  const other = await createProject(hub, 'slow');
  const dead = (await hub.api('POST', `/api/projects/${other}/runs`, { scope: 'all' })).body.id;
  const deadState = stateFileOf(hub, other, dead);
  const deadPid = await waitFor(() => fs.existsSync(deadState) && JSON.parse(fs.readFileSync(deadState, 'utf8')).pid, 'the runner');
  await waitFor(() => fs.existsSync(stateFileOf(hub, projectId, live)), 'the other runner');
  await hub.stop('SIGKILL');
  process.kill(deadPid, 'SIGKILL');
  fs.writeFileSync(stateFileOf(hub, projectId, live), '{not json');
  fs.writeFileSync(deadState, '');
  const again = await startHub({ pipelines: PIPELINES, dir: hub.dir });
  try {
    const failed = await waitForRun(again, other, dead, ['failed', 'completed']);
    assert.is(failed.status, 'failed');
    assert.match(failed.error_message, /state file is unreadable \(the file is empty\): the run's outcome is unknown/);
    const completed = await waitForRun(again, projectId, live, ['failed', 'completed']);
    assert.is(completed.status, 'completed', completed.error_message);
    assert.match(fs.readFileSync(logFileOf(again, projectId, live), 'utf8'), 'end\n');
  } finally {
    await again.stop();
  }
});

test('a database locked while a run ends: settling is retried until written; complete is sent; the queued run starts once', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  const locker = sqliteLocker(path.join(hub.dir, 'data', 'hub.sqlite'));
  const { exec } = locker;
  try {
    const projectId = await createProject(hub, 'gated');
    const first = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id;
    const second = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body.id;
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: first, offset: 0 });
    await client.waitFor((m) => m.type === 'lines', 'the first lines');
    // Its progress is recorded (no write of the server's is waiting), then the lock is taken.
    await waitFor(async () => (await hub.api('GET', `/api/projects/${projectId}/runs/${first}`)).body.current_step === 's', 'the step to be recorded');
    await exec('PRAGMA busy_timeout = 1000; BEGIN EXCLUSIVE');
    // Only now may the run end: under the lock, which is held until recording its end has failed
    // (the server's busy timeout is 5 s).
    gate.open();
    await waitFor(() => hub.output().includes('recording the end of a run failed; trying again'), 'a failed attempt to record the end', 20_000);
    await exec('COMMIT');
    const run = await waitForRun(hub, projectId, first, ['completed', 'failed'], 20_000);
    assert.is(run.status, 'completed');
    assert.is((await client.complete(first, 10_000)).status, 'completed');
    const next = await waitForRun(hub, projectId, second, ['completed', 'failed'], 20_000);
    assert.is(next.status, 'completed');
    const log = fs.readFileSync(logFileOf(hub, projectId, second), 'utf8');
    assert.is(log.split('[hub] step 1/1').length - 1, 1, 'the queued run started once');
    await client.close();
  } finally {
    locker.close();
    await hub.stop();
  }
});

test('a runner that dies before it gets its run never leaves the run running', async () => {
  const hub = await startHub({ pipelines: PIPELINES });
  try {
    const projectId = await createProject(hub, 'short');
    const serverPid = hub.process.pid!;
    for (let attempt = 0; attempt < 5; attempt++) {
      // The runner started ahead of time: a child of the server running runner.js.
      const idle = await waitFor(() => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).find((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('pipeline-runner/runner.js') && fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(serverPid);
        } catch {
          return false;
        }
      }), 'the idle runner');
      // Stopped, the server sees the runner's death and the request in one turn of its event loop:
      // the request may take the dead runner before its exit is handled.
      process.kill(serverPid, 'SIGSTOP');
      process.kill(Number(idle), 'SIGKILL');
      const request = hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      process.kill(serverPid, 'SIGCONT');
      const { body } = await request;
      const run = await waitForRun(hub, projectId, body.id, ['completed', 'failed'], 10_000);
      if (run.status === 'failed') assert.match(run.error_message, /runner was killed by SIGKILL|could not start/);
      assert.not.ok(isAlive(Number(idle)));
    }
  } finally {
    await hub.stop();
  }
});

test.run();
