import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFiles } from '../../server/paths.js';
import { startCluster } from '../helpers/cluster.js';
import { createProject, waitFor, waitForRun } from '../helpers/hub.js';
import { LOCKED_STEP, watchRunProcesses } from '../helpers/runProcesses.js';

const LEASE_MS = 5000;
const PAUSE_MS = 12_000;

const PIPELINES = { locked: { steps: [{ name: 'hold', command: ['sh', '-c', LOCKED_STEP] }], scopes: { all: 'hold' } } };

test('PostgreSQL frozen 12 s (SIGSTOP) under a 5 s lease: the running run\'s steps are stopped before its lease expires, it ends failed (lease lost), and only then does the queued run of its project start; never two at once', async () => {
  const cluster = await startCluster({ pipelines: PIPELINES, env: { HUB_WORKER_TIMEOUT_MS: String(LEASE_MS) } });
  const [a, b] = cluster.hubs;
  let frozen = false;
  let watch: ReturnType<typeof watchRunProcesses> | undefined;
  try {
    const projectId = await createProject(a, 'locked');
    const docRoot = (await a.api('GET', `/api/projects/${projectId}`)).body.doc_root as string;
    watch = watchRunProcesses(docRoot);
    const first = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const second = (await b.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
    await waitFor(() => fs.existsSync(path.join(docRoot, 'marks')), 'the first run\'s step to start', 20_000);
    await waitFor(() => watch!.seen.has(first.id), 'its processes to be seen');
    // Every PostgreSQL process frozen: the worker cannot renew, the hubs cannot look.
    cluster.postgres.signal('SIGSTOP');
    frozen = true;
    const stoppedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS)); // the fault itself lasts this long
    cluster.postgres.signal('SIGCONT');
    frozen = false;
    const resumedAt = Date.now();
    const ended = await waitForRun(a, projectId, first.id, ['failed', 'completed', 'cancelled'], 30_000);
    const done = await waitForRun(b, projectId, second.id, ['completed', 'failed', 'cancelled'], 30_000);
    watch.stop();
    const marks = fs.readFileSync(path.join(docRoot, 'marks'), 'utf8').trim().split('\n');
    const violations = fs.existsSync(path.join(docRoot, 'violations')) ? fs.readFileSync(path.join(docRoot, 'violations'), 'utf8') : '';
    assert.equal(watch.overlaps.slice(0, 3), [], 'no sample saw processes of both runs alive');
    assert.is(violations, '', 'no step found the lock held by a live step');
    assert.ok(['failed', 'completed'].includes(ended.status), `the first run ended (${ended.status})`);
    if (ended.status === 'failed') {
      assert.match(ended.error_message, /lease/, `a clear reason: ${ended.error_message}`);
      // Given up only once the hub's own connection had been up a whole lease time after the freeze.
      const after = Date.parse(ended.finished_at) - resumedAt;
      assert.ok(after >= LEASE_MS - 100, `given up ${after} ms after PostgreSQL came back`);
    }
    assert.is(done.status, 'completed', `the queued run ran afterwards (${done.error_message})`);
    assert.equal(marks.filter((mark) => mark.startsWith('start')), [`start ${first.id}`, `start ${second.id}`], 'each run\'s step started once, in order');
    assert.not.ok(marks.includes(`end ${first.id}`), 'the first run\'s step was stopped (it would have slept 25 s)');
    // Stopped by whichever saw it first: the worker (2/3 of the lease from the last renewal sent) or its runner (0.57 from the last one it saw).
    const carrier = cluster.workers.find((w) => fs.existsSync(runFiles(w.logs, projectId, first.id).state))!;
    const said = cluster.workers.some((w) => w.output().includes('lease on a run lost')) || /\[hub\] run failed: .*lease/.test(fs.readFileSync(runFiles(carrier.logs, projectId, first.id).log, 'utf8'));
    assert.ok(said, 'the worker (in its output) or the runner (in the log) says the run was stopped for its lease');
    const stoppedAfter = Math.round(fs.statSync(runFiles(carrier.logs, projectId, first.id).state).mtimeMs - stoppedAt);
    process.stdout.write(`  (steps stopped ${stoppedAfter} ms into the freeze; given up ${Date.parse(ended.finished_at) - resumedAt} ms after it; the queued run started ${Date.parse(done.started_at) - resumedAt} ms after it)\n`);
  } finally {
    watch?.stop();
    if (frozen) cluster.postgres.signal('SIGCONT');
    await cluster.stop();
  }
});

/**
 * The worker carrying a run is paused (SIGSTOP: a long GC, a VM migration) or stopped (SIGTERM, a
 * deploy that does not bring it back) for longer than its lease, its runner and the run's steps
 * alive on its machine, a second run of the project queued and another worker free. The worker
 * cannot stop anything then: its runner must, before the lease can expire.
 */
for (const fault of ['SIGSTOP', 'SIGTERM'] as const) {
  test(`the worker carrying a run ${fault === 'SIGSTOP' ? 'paused (SIGSTOP) 12 s' : 'stopped (SIGTERM) and not started again'} under a 5 s lease: its runner stops the run's steps before the lease expires, and the queued run of the project starts only after; never two at once`, async () => {
    const cluster = await startCluster({ pipelines: PIPELINES, env: { HUB_WORKER_TIMEOUT_MS: String(LEASE_MS) } });
    const [a, b] = cluster.hubs;
    let paused: (typeof cluster.workers)[number] | undefined;
    let watch: ReturnType<typeof watchRunProcesses> | undefined;
    try {
      const projectId = await createProject(a, 'locked');
      const docRoot = (await a.api('GET', `/api/projects/${projectId}`)).body.doc_root as string;
      watch = watchRunProcesses(docRoot);
      const first = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
      const second = (await b.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
      await waitFor(() => fs.existsSync(path.join(docRoot, 'marks')), 'the first run\'s step to start', 20_000);
      await waitFor(() => watch!.seen.has(first.id), 'its processes to be seen');
      const carrier = cluster.workers.find((worker) => fs.existsSync(runFiles(worker.logs, projectId, first.id).log));
      assert.ok(carrier, 'a worker holds the run\'s log');
      const faultAt = Date.now();
      carrier.process.kill(fault);
      if (fault === 'SIGSTOP') paused = carrier;
      const done = await waitForRun(b, projectId, second.id, ['completed', 'failed', 'cancelled'], 40_000);
      const ended = await waitForRun(a, projectId, first.id, ['failed', 'completed', 'cancelled'], 10_000);
      if (paused) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, faultAt + PAUSE_MS - Date.now()))); // the pause lasts this long at least
        paused.process.kill('SIGCONT');
        paused = undefined;
      }
      watch.stop();
      const marks = fs.readFileSync(path.join(docRoot, 'marks'), 'utf8').trim().split('\n');
      const violations = fs.existsSync(path.join(docRoot, 'violations')) ? fs.readFileSync(path.join(docRoot, 'violations'), 'utf8') : '';
      assert.equal(watch.overlaps.slice(0, 3), [], 'no sample saw processes of both runs alive');
      assert.is(violations, '', 'no step found the lock held by a live step');
      assert.is(ended.status, 'failed');
      assert.match(ended.error_message, /lease/, `a clear reason: ${ended.error_message}`);
      assert.is(done.status, 'completed', `the queued run ran afterwards (${done.error_message})`);
      assert.equal(marks.filter((mark) => mark.startsWith('start')), [`start ${first.id}`, `start ${second.id}`], 'each run\'s step started once, in order');
      assert.not.ok(marks.includes(`end ${first.id}`), 'the first run\'s step was stopped (it would have slept 25 s)');
      const log = fs.readFileSync(runFiles(carrier.logs, projectId, first.id).log, 'utf8');
      assert.match(log, /\[hub\] run failed: .*lease/, 'its runner says in the log why it stopped the run');
      const stoppedAt = fs.statSync(runFiles(carrier.logs, projectId, first.id).state).mtimeMs;
      process.stdout.write(`  (${fault}: the runner stopped the steps ${Math.round(stoppedAt - faultAt)} ms after the fault; the run given up ${Date.parse(ended.finished_at) - faultAt} ms after it, the queued run started ${Date.parse(done.started_at) - faultAt} ms after it)\n`);
    } finally {
      watch?.stop();
      paused?.process.kill('SIGCONT');
      await cluster.stop();
    }
  });
}

test.run();
