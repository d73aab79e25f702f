import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Section } from '../../server/wire.js';
import { startCluster } from '../helpers/cluster.js';
import { fileGate } from '../helpers/fileGate.js';
import { createProject, sh, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const gate = fileGate();
test.after(() => gate.remove());

const GITLAB_START = (key: string, name: string, collapsed = false) => `printf '\\033[0Ksection_start:1700000000:${key}${collapsed ? '[collapsed=true]' : ''}\\r\\033[0K${name}\\n'`;
const GITLAB_END = (key: string) => `printf '\\033[0Ksection_end:1700000005:${key}\\r\\033[0K\\n'`;

/** The three dialects nested three deep both ways round, a Buildkite unfold, one section left open at the run's end. */
const PIPELINES = {
  marked: {
    steps: [
      { name: 'build', command: sh([
        "echo '::group::Outer'", GITLAB_START('mid', 'Middle', true), "echo '+++ Inner'", 'echo inner line',
        gate.waitCommand,
        "echo '--- Inner two'", 'echo x', "echo '^^^ +++'", GITLAB_END('mid'), "echo '~~~ Muted'", 'echo y', "echo '::endgroup::'",
      ].join('; ')) },
      { name: 'test', command: sh([
        "echo '+++ Deploy'", GITLAB_START('db', 'Database'), "echo '::group::Deepest'", 'echo w', "echo '::endgroup::'", GITLAB_END('db'), "echo '--- left open'", 'echo z',
      ].join('; ')) },
    ],
    scopes: { all: 'build' },
  },
};

/** What a client compares between modes: everything but the times, which are each run's own (checked apart). */
const shapeOf = (sections: Section[]) => sections.map(({ started_at, ended_at, ...rest }) => {
  assert.type(started_at, 'number', `section ${rest.id} has its start time`);
  assert.is(ended_at === null, rest.end === null, `section ${rest.id} has an end time once closed`);
  return rest;
});

async function sectionsOf(hub: TestHub, projectId: number, runId: number) {
  const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/sections`);
  assert.is(status, 200, JSON.stringify(body));
  return body as { sections: Section[]; indexed: number; complete: boolean };
}

/** The page once `ready` holds of it (the index follows the log a moment behind). */
const pageWhen = (hub: TestHub, projectId: number, runId: number, ready: (page: { sections: Section[]; complete: boolean }) => boolean, what: string) =>
  waitFor(async () => {
    const page = await sectionsOf(hub, projectId, runId);
    return ready(page) ? page : null;
  }, what, 15_000);

const latestOf = (client: TestClient, runId: number) => {
  const latest = new Map<number, Section>();
  for (const message of client.messages) if (message.type === 'sections' && message.run_id === runId) for (const section of message.sections as Section[]) latest.set(section.id, section);
  return [...latest.values()].sort((a, b) => a.id - b.id);
};

test('cluster hubs serve the sections embedded mode serves for the same output, while running and after; a hub that never saw the run serves them after its end', async () => {
  const embedded = await startHub({ pipelines: PIPELINES });
  const cluster = await startCluster({ pipelines: PIPELINES, workers: 1 }).catch(async (error: unknown) => {
    await embedded.stop();
    throw error;
  });
  const [a, b] = cluster.hubs;
  const client = await TestClient.connect(a.url);
  try {
    const localProject = await createProject(embedded, 'marked');
    const clusterProject = await createProject(a, 'marked');
    const { body: localRun } = await embedded.api('POST', `/api/projects/${localProject}/runs`, { scope: 'all' });
    const { body: clusterRun } = await a.api('POST', `/api/projects/${clusterProject}/runs`, { scope: 'all' });
    await waitForRun(a, clusterProject, clusterRun.id, ['running']);
    // The first to want them is a WebSocket subscriber: hub A indexes the running run from then on.
    client.send({ type: 'subscribe', run_id: clusterRun.id, offset: 0, sections: true });
    await client.waitFor((message) => message.type === 'subscribed', 'subscribed');
    await waitFor(() => latestOf(client, clusterRun.id).length === 3, 'sections messages of the three open sections', 15_000);

    // While the run waits at the gate: three open sections, nested, the same on both modes.
    const threeOpen = (page: { sections: Section[] }) => page.sections.length === 3;
    const localOpen = await pageWhen(embedded, localProject, localRun.id, threeOpen, 'the embedded hub\'s three open sections');
    const clusterOpen = await pageWhen(a, clusterProject, clusterRun.id, threeOpen, 'hub A\'s three open sections');
    assert.equal(shapeOf(clusterOpen.sections), shapeOf(localOpen.sections), 'while running: the same sections as embedded mode');
    assert.equal(clusterOpen.sections.map((section) => [section.name, section.dialect, section.depth, section.end]), [['Outer', 'github', 0, null], ['Middle', 'gitlab', 1, null], ['Inner', 'buildkite', 2, null]]);
    assert.is(clusterOpen.complete, false);
    assert.equal(shapeOf(latestOf(client, clusterRun.id)), shapeOf(clusterOpen.sections), 'the messages say what the page says');
    // Hub B was asked nothing: it has not read the log.
    assert.not.ok(fs.existsSync(path.join(b.dir, 'logs', 'sections', `${clusterRun.id}.sections`)), 'hub B indexes nothing nobody asked it for');

    gate.open();
    await client.complete(clusterRun.id, 20_000);
    assert.is((await waitForRun(embedded, localProject, localRun.id, ['completed', 'failed'])).status, 'completed');
    const local = await pageWhen(embedded, localProject, localRun.id, (page) => page.complete, 'the embedded index to complete');
    const viaA = await pageWhen(a, clusterProject, clusterRun.id, (page) => page.complete, 'hub A\'s index to complete');
    const viaB = await pageWhen(b, clusterProject, clusterRun.id, (page) => page.complete, 'hub B\'s index to complete');
    assert.is(local.sections.length, 9);
    assert.equal(shapeOf(viaA.sections), shapeOf(local.sections), 'after the end, hub A: the same sections as embedded mode');
    assert.equal(shapeOf(viaB.sections), shapeOf(local.sections), 'after the end, hub B (never saw the run): the same');
    assert.is(viaA.indexed, local.indexed);
    assert.is(viaB.indexed, local.indexed);
    // The messages' last states are the page's, for every section closed before the run's last read
    // (those of that read may come after `complete`, when the subscription has ended; with batched
    // shipping the rest of the log after the gate often comes in that one read, so there may be none).
    const told = latestOf(client, clusterRun.id).filter((section) => section.end !== null);
    assert.equal(shapeOf(told), shapeOf(viaA.sections.filter((section) => told.some((closed) => closed.id === section.id))));
    // The same pages by offset (`from`) on both modes.
    const from = local.sections[4].start;
    const localFrom = (await embedded.api('GET', `/api/projects/${localProject}/runs/${localRun.id}/sections?from=${from}&limit=2`)).body;
    const clusterFrom = (await b.api('GET', `/api/projects/${clusterProject}/runs/${clusterRun.id}/sections?from=${from}&limit=2`)).body;
    assert.equal(shapeOf(clusterFrom.sections), shapeOf(localFrom.sections));
    assert.is(clusterFrom.next, localFrom.next);
  } finally {
    await client.close();
    await cluster.stop();
    await embedded.stop();
  }
});

test.run();
