import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limitsOf, RetentionSweeper, type Limits } from '../../server/runs/retention.js';
import type { RunRow } from '../../server/store/runs.js';
import { openSqliteStore } from '../../server/store/sqlite/store.js';
import { createProject, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const DAY = 86_400_000;
const NO_LIMITS = { runs: null, days: null, log_bytes: null };

test('a project\'s own limits override the defaults key by key; null is no limit', () => {
  assert.equal(limitsOf({ runs: 10, days: 30, log_bytes: 1000 }, { runs: 3, days: null }), { runs: 3, days: null, log_bytes: 1000 });
  assert.equal(limitsOf(NO_LIMITS, {}), NO_LIMITS);
});

test('the sweeper removes beyond the newest N, older than D days, beyond B bytes from the newest (never the newest for its size), naming the rule', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-retention-'));
  const store = await openSqliteStore(path.join(dir, 'hub.sqlite'));
  try {
    const now = Date.parse('2026-11-27T12:00:00Z');
    const removedBy = async (limits: Partial<Limits>) => {
      const project = await store.projects.insert({ name: `p${Math.random()}`, doc_root: dir, pipeline: 'p', settings: {}, retention: {} });
      const ids: number[] = [];
      for (const daysAgo of [40, 9, 2, 1, 0.1]) {
        const row = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });
        await store.runs.settle(row.id, { status: 'completed', finished_at: new Date(now - daysAgo * DAY).toISOString(), log_size: 100 });
        ids.push(row.id);
      }
      const logged: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
      const sweeper = new RetentionSweeper({ ...NO_LIMITS, ...limits }, { projects: store.projects, store: store.retention, removed: () => {}, log, now: () => now });
      await sweeper.sweepProject(project.id);
      await sweeper.close();
      const kept = new Set((await store.runs.listForProject(project.id, 10)).map((run) => run.id));
      const rules = logged.map((line) => JSON.parse(line) as { rule: string; first_run_id: number; last_run_id: number });
      // Runs 1…5 oldest first (as ids of this project, 1 the oldest): `number:rule` of each one removed.
      return ids.flatMap((id, index) => (kept.has(id) ? [] : [`${index + 1}:${rules.find((entry) => entry.first_run_id <= id && id <= entry.last_run_id)?.rule}`]));
    };
    assert.equal(await removedBy({}), []);
    assert.equal(await removedBy({ runs: 3 }), ['1:runs', '2:runs']);
    assert.equal(await removedBy({ days: 7 }), ['1:days', '2:days']);
    assert.equal(await removedBy({ log_bytes: 250 }), ['1:log_bytes', '2:log_bytes', '3:log_bytes']);
    assert.equal(await removedBy({ log_bytes: 1 }), ['1:log_bytes', '2:log_bytes', '3:log_bytes', '4:log_bytes'], 'the newest stays, however large');
    assert.equal(await removedBy({ runs: 4, days: 30 }), ['1:runs']);
  } finally {
    await store.close();
  }
});

test('the sweeper removes finished runs past the limits by a clock the test sets; never a pending or running run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-retention-'));
  const store = await openSqliteStore(path.join(dir, 'hub.sqlite'));
  try {
    const project = await store.projects.insert({ name: 'kept', doc_root: dir, pipeline: 'p', settings: {} });
    const other = await store.projects.insert({ name: 'unlimited', doc_root: dir, pipeline: 'p', settings: {}, retention: { days: null } });
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const insert = async (projectId: number, status: RunRow['status']) => {
      const row = await store.runs.insert({ project_id: projectId, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });
      if (status === 'pending') return row;
      if (status === 'running') return (await store.runs.claim(row.id, { runner_pid: 1 }))!;
      return (await store.runs.settle(row.id, { status, finished_at: new Date(clock).toISOString(), log_size: 10 }))!;
    };
    const old = await insert(project.id, 'completed');
    const oldOther = await insert(other.id, 'failed');
    clock += 10 * DAY;
    const recent = await insert(project.id, 'cancelled');
    const running = await insert(project.id, 'running');
    const queued = await insert(project.id, 'pending');
    const removed: number[] = [];
    const sweeper = new RetentionSweeper({ runs: null, days: 7, log_bytes: null }, {
      projects: store.projects,
      store: store.retention,
      removed: (runs) => void removed.push(...runs.map((run) => run.id)),
      log: pino({ level: 'silent' }),
      now: () => clock,
    });
    assert.is(await sweeper.sweep(), 1);
    assert.equal(removed, [old.id], 'older than 7 days by the set clock; the other project has no day limit');
    clock += 30 * DAY; // everything finished is old now; the active runs stay, whatever their age
    assert.is(await sweeper.sweepProject(project.id), 1);
    assert.equal(removed, [old.id, recent.id]);
    assert.equal((await store.runs.listForProject(project.id, 10)).map((r) => r.id), [queued.id, running.id]);
    assert.ok(await store.runs.get(oldOther.id), 'a project with days: null keeps its runs');
    await sweeper.close();
  } finally {
    await store.close();
  }
});

test('HUB_RETENTION_RUNS=2: when a run ends the oldest finished one goes with its files, announced to the project\'s subscribers as run_removed', async () => {
  const hub = await startHub({
    env: { HUB_RETENTION_RUNS: '2' },
    pipelines: { quick: { steps: [{ name: 'q', command: ['sh', '-c', 'echo run $HUB_RUN_ID'] }], scopes: { all: 'q' } } },
  });
  try {
    const projectId = await createProject(hub, 'quick');
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', project_id: projectId });
    await client.waitFor((m) => m.type === 'subscribed' && m.project_id === projectId, 'the project subscription');
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
      await waitForRun(hub, projectId, body.id, ['completed']);
      ids.push(body.id);
    }
    const message = await client.waitFor((m) => m.type === 'run_removed', 'run_removed');
    assert.equal(message, { type: 'run_removed', project_id: projectId, run_id: ids[0], reason: 'retention' });
    assert.is((await hub.api('GET', `/api/projects/${projectId}/runs/${ids[0]}`)).status, 404);
    await waitFor(() => !fs.existsSync(path.join(hub.dir, 'logs', String(projectId), `${ids[0]}.log`)), 'the log file to go');
    assert.not.ok(fs.existsSync(path.join(hub.dir, 'logs', String(projectId), `${ids[0]}.json`)), 'its state file too');
    assert.equal((await hub.api('GET', `/api/projects/${projectId}/runs`)).body.map((r: { id: number }) => r.id), [ids[2], ids[1]]);
    assert.match(hub.output(), 'removed finished runs past the retention limits');

    // The project's own limit: none. Nothing more goes.
    const patched = await hub.api('PATCH', `/api/projects/${projectId}`, { retention: { runs: null } });
    assert.equal(patched.body.retention, { runs: null });
    const { body: fourth } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, fourth.id, ['completed']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.is((await hub.api('GET', `/api/projects/${projectId}/runs`)).body.length, 3);
    await client.close();
  } finally {
    await hub.stop();
  }
});

test.run();

test('a sweep waits for a batch\'s removals (logs, notices) before it goes on, so one sweep never has more than a batch of them under way', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-retention-'));
  const store = await openSqliteStore(path.join(dir, 'hub.sqlite'));
  try {
    const project = await store.projects.insert({ name: 'gated', doc_root: dir, pipeline: 'p', settings: {}, retention: { runs: 1 } });
    for (let i = 0; i < 3; i++) {
      const row = await store.runs.insert({ project_id: project.id, scope: 'all', status: 'pending', triggered_by: 'test', progress_total: 1, plan: null });
      await store.runs.settle(row.id, { status: 'completed', finished_at: new Date().toISOString(), log_size: 10 });
    }
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let removedRuns = 0;
    const sweeper = new RetentionSweeper(NO_LIMITS, { projects: store.projects, store: store.retention, removed: (runs) => ((removedRuns += runs.length), gate), log: pino({ level: 'silent' }) });
    let done = false;
    const sweep = sweeper.sweepProject(project.id).then(() => (done = true));
    await waitFor(() => removedRuns === 2, 'the batch to be removed');
    await new Promise((resolve) => setTimeout(resolve, 100)); // a sweep that did not wait would be done by now
    assert.is(done, false, 'the sweep is still waiting for the batch\'s removals');
    release();
    await sweep;
    assert.is(done, true);
    await sweeper.close();
  } finally {
    await store.close();
  }
});
