import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Section } from '../../server/wire.js';
import { fileGate } from '../helpers/fileGate.js';
import { createProject, nodeStep, sh, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const SECTIONS = 100_000;
const gate = fileGate();
const second = fileGate();
let hub: TestHub;

test.before(async () => {
  hub = await startHub({
    pipelines: {
      live: {
        steps: [
          // A GitHub group, then (after the gate) a GitLab section nested in it, both closed; a Buildkite one left open.
          { name: 'build', command: sh(`echo '::group::Compile'; echo cc; ${gate.waitCommand}; printf '\\033[0Ksection_start:1700000000:link[collapsed=true]\\r\\033[0KLink it\\nld\\n\\033[0Ksection_end:1700000001:link\\r\\033[0K\\n::endgroup::\\n--- left open\\nstill in it\\n'`) },
          { name: 'test', command: sh(`echo '+++ Tests'; ${second.waitCommand}; echo ok`) },
        ],
        scopes: { all: 'build' },
      },
      many: {
        // 100 000 sections, each a group of one line with a Buildkite section in it (every other one left to its group's end).
        steps: [{ name: 'many', command: nodeStep(`const out = []; for (let i = 0; i < ${SECTIONS / 2}; i++) out.push('::group::g' + i + '\\n~~~ k' + i + '\\nline ' + i + '\\n::endgroup::\\n'); process.stdout.write(out.join(''))`) }],
        scopes: { all: 'many' },
      },
    },
  });
});

test.after(async () => {
  await hub?.stop();
  gate.remove();
  second.remove();
});

const sectionsOf = (messages: { type: string; sections?: unknown }[]) => {
  const latest = new Map<number, Section>();
  for (const message of messages) if (message.type === 'sections') for (const section of message.sections as Section[]) latest.set(section.id, section);
  return latest;
};

test('a live run: sections messages as sections open and close, nested, times from the lines, one left open closed at its step end', async () => {
  const projectId = await createProject(hub, 'live');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const client = await TestClient.connect(hub.url);
  try {
    client.send({ type: 'subscribe', run_id: run.id, offset: 0, sections: true });
    await client.waitFor((message) => message.type === 'subscribed', 'subscribed');
    // What opened before the subscription is read from the index; what changes after comes as messages.
    const during = await waitFor(async () => {
      const answer = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections`);
      return answer.body.sections?.length > 0 ? answer : null;
    }, 'the group to open');
    const [compile] = during.body.sections as Section[];
    assert.equal([compile.name, compile.dialect, compile.step, compile.end, compile.collapsed], ['Compile', 'github', 'build', null, false], 'open, while the step waits');
    assert.type(compile.started_at, 'number');
    assert.is(during.body.complete, false);
    gate.open();
    // While the second step waits: the group's close, the nested section, the one left open closed at its step's end, the next step's.
    const latest = await waitFor(() => {
      const received = sectionsOf(client.messages);
      return received.get(1)?.end != null && received.get(3)?.end != null && received.has(4) ? received : null;
    }, 'the messages of the first step\'s sections');
    assert.is(latest.get(4)!.end, null, 'open while its step runs');
    second.open();
    await client.complete(run.id);
    // Sections that close at the run's end may come after `complete`: the index has them (a finished run's page waits for it).
    const { body: page } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections`);
    assert.ok(page.complete);
    const log = fs.readFileSync(`${hub.dir}/logs/${projectId}/${run.id}.log`, 'latin1');
    const sections = page.sections as Section[];
    assert.equal(sections.map((section) => [section.name, section.dialect, section.parent, section.step, section.collapsed]), [
      ['Compile', 'github', null, 'build', false],
      ['Link it', 'gitlab', 1, 'build', true],
      ['left open', 'buildkite', null, 'build', true],
      ['Tests', 'buildkite', null, 'test', false],
    ]);
    assert.is(sections[2].end, log.indexOf('[hub] step 2/2'), 'left open: closed where its step ended');
    assert.is(log.slice(sections[1].start, sections[1].end!), '\x1b[0Ksection_start:1700000000:link[collapsed=true]\r\x1b[0KLink it\nld\n\x1b[0Ksection_end:1700000001:link\r\x1b[0K\n');
    for (const section of sections) assert.ok(section.started_at! <= section.ended_at!, `${section.name}: a duration`);
    assert.ok(sections[0].ended_at! - sections[0].started_at! >= 0);
    for (const id of [1, 2, 3]) assert.equal(latest.get(id), sections[id - 1], 'the messages and the page agree');
    assert.is(page.indexed, log.length);
  } finally {
    await client.close();
  }
});

test('subscribers that did not ask get no sections messages', async () => {
  const projectId = await createProject(hub, 'live');
  gate.open();
  second.open();
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const client = await TestClient.connect(hub.url);
  try {
    client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await client.complete(run.id);
    const { body } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections`);
    assert.ok(body.complete);
    assert.is(body.sections.length, 4);
    assert.not.ok(client.messages.some((message) => message.type === 'sections'));
  } finally {
    await client.close();
  }
});

/** The server's resident memory (kB), from /proc. */
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

test(`a log of ${SECTIONS} sections is served in pages in bounded memory`, async () => {
  const projectId = await createProject(hub, 'many');
  const before = rssOf(hub.process.pid!);
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, run.id, ['completed'], 60_000);
  const ran = rssOf(hub.process.pid!);
  let after = 0;
  let count = 0;
  let pages = 0;
  let peak = before;
  const started = performance.now();
  for (;;) {
    const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections?after=${after}&limit=1000`);
    assert.is(status, 200);
    assert.ok(body.complete, 'a finished run: complete');
    peak = Math.max(peak, rssOf(hub.process.pid!));
    if (body.sections.length === 0) break;
    for (const [index, section] of (body.sections as Section[]).entries()) {
      assert.is(section.id, after + index + 1, 'ids in order, none missed');
      const group = Math.floor((section.id - 1) / 2);
      assert.is(section.name, section.id % 2 === 1 ? `g${group}` : `k${group}`);
      assert.is(section.parent, section.id % 2 === 1 ? null : section.id - 1);
      assert.ok(section.end !== null);
    }
    count += body.sections.length;
    after = body.next;
    pages++;
  }
  const elapsed = performance.now() - started;
  const grown = peak - before;
  console.log(`  ${count} sections in ${pages} pages in ${elapsed.toFixed(0)} ms; server RSS ${before} kB before the run, ${ran} kB after it, peak ${peak} kB while indexing and paging (+${grown} kB); index files ${fs.statSync(`${hub.dir}/logs/${projectId}/${run.id}.sections`).size + fs.statSync(`${hub.dir}/logs/${projectId}/${run.id}.section-names`).size} bytes`);
  assert.is(count, SECTIONS);
  // A whole process's RSS moves with its garbage: a loose bound here (sectionIndexer.test.ts measures the heap the index keeps).
  assert.ok(grown < 100_000, `RSS grew ${grown} kB`);
  const { body: last } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections?after=${SECTIONS - 2}`);
  assert.equal(last.sections.map((section: Section) => section.name), [`g${SECTIONS / 2 - 1}`, `k${SECTIONS / 2 - 1}`], 'any page is one read');
  // By byte offset: the first section starting at or after it, found by binary search of the index.
  const log = fs.readFileSync(`${hub.dir}/logs/${projectId}/${run.id}.log`, 'latin1');
  const middle = log.indexOf('::group::g30000\n');
  for (const [from, name] of [[middle, 'g30000'], [middle + 1, 'k30000'], [0, 'g0'], [log.length, undefined]] as const) {
    const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections?from=${from}&limit=2`);
    assert.is(status, 200);
    assert.is(body.sections[0]?.name, name, `from=${from}`);
    if (name) assert.ok(body.sections[0].start >= from, 'at or after it');
  }
  const both = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections?from=${middle}&after=70000&limit=1`);
  assert.is(both.body.sections[0].id, 70_001, 'with after: whichever comes later');
});

test('bad paging parameters are 400 with their field', async () => {
  const projectId = await createProject(hub, 'live');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections?limit=-1`);
  assert.is(status, 400);
  assert.match(JSON.stringify(body), 'limit');
  await waitForRun(hub, projectId, run.id, ['completed']);
});

test.run();
