import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limitsOf, pastLimits, RetentionSweeper } from '../../server/runs/retention.js';
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

test('pastLimits: beyond the newest N, older than D days, beyond B bytes from the newest (never the newest for its size)', () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  const run = (id: number, daysAgo: number, size: number) => ({ id, log_size: size, finished_at: new Date(now - daysAgo * DAY).toISOString(), created_at: '' }) as RunRow;
  const finished = [run(5, 0.1, 100), run(4, 1, 100), run(3, 2, 100), run(2, 9, 100), run(1, 40, 100)];
  const ids = (limits: typeof NO_LIMITS | Record<string, number | null>) => pastLimits(finished, { ...NO_LIMITS, ...limits }, now).map((r) => `${r.run.id}:${r.rule}`);
  assert.equal(ids({}), []);
  assert.equal(ids({ runs: 3 }), ['2:runs', '1:runs']);
  assert.equal(ids({ days: 7 }), ['2:days', '1:days']);
  assert.equal(ids({ log_bytes: 250 }), ['3:log_bytes', '2:log_bytes', '1:log_bytes']);
  assert.equal(ids({ log_bytes: 1 }), ['4:log_bytes', '3:log_bytes', '2:log_bytes', '1:log_bytes'], 'the newest stays, however large');
  assert.equal(ids({ runs: 4, days: 30 }), ['1:runs']);
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
      runs: store.runs,
      remove: async (run) => {
        removed.push(run.id);
        await store.runs.delete(run.id);
      },
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
    assert.match(hub.output(), 'removed a finished run past the retention limits');

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
