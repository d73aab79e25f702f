import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, launchBrowser, takeCspViolations } from '../helpers/browser.js';
import { fileGate } from '../helpers/fileGate.js';
import { createProject, groupsStep, sh, startHub, waitForRun, type TestHub } from '../helpers/hub.js';

// Three dialects nested three deep, a folded GitLab section, a Buildkite one left open at the step's end.
const BUILD = [
  `echo 'preparing'`,
  `echo '::group::Compile'`,
  `echo 'cc -c main.c'`,
  `printf '\\033[0Ksection_start:1700000000:link[collapsed=true]\\r\\033[0KLink it\\n'`,
  `echo 'ld -o app main.o'`,
  `echo '+++ Symbols'`,
  `echo 'main at 0x1000'`,
  `sleep 0.3`,
  `printf '\\033[0Ksection_end:1700000001:link\\r\\033[0K\\n'`,
  `echo 'compiled'`,
  `echo '::endgroup::'`,
  `echo '--- Tests'`,
  `for i in 1 2 3; do echo "test $i ok"; done`,
  `echo '~~~ Cleanup'`,
  `echo 'removed tmp'`,
].join('; ');

const MANY = 25_000;
const gate = fileGate();
const second = fileGate();
const third = fileGate();
const fourth = fileGate();
// A group opened while the test watches, then (after the gate) a nested GitLab section, both closed while a second step still runs.
const LIVE = `echo '::group::Live group'; echo 'inside'; ${gate.waitCommand}; printf '\\033[0Ksection_start:1700000000:late[collapsed=true]\\r\\033[0KLate section\\nlate line\\n\\033[0Ksection_end:1700000001:late\\r\\033[0K\\n::endgroup::\\n'`;

let hub: TestHub;
let browser: Browser;
let page: Page;

test.before(async () => {
  hub = await startHub({
    pipelines: {
      marked: { steps: [{ name: 'build', command: sh(BUILD) }], scopes: { all: 'build' } },
      // 25 000 groups of one line, the last one named; then a Buildkite section of its own.
      many: { steps: [{ name: 'many', command: groupsStep(MANY) }], scopes: { all: 'many' } },
      // The same, then (after a gate) one more group, told over the WebSocket.
      manyLive: { steps: [{ name: 'many', command: sh(`'${process.execPath}' -e 'const out = []; for (let i = 1; i <= ${MANY}; i++) out.push("::group::g" + i + "\\nline " + i + "\\n::endgroup::\\n"); process.stdout.write(out.join(""))'; ${third.waitCommand}; printf '::group::After gate\\nafter line\\n::endgroup::\\n'; ${fourth.waitCommand}`) }], scopes: { all: 'many' } },
      live: { steps: [{ name: 'grow', command: sh(LIVE) }, { name: 'after', command: sh(`echo next; ${second.waitCommand}`) }], scopes: { all: 'grow' } },
    },
  });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
});

test.after(async () => {
  await browser?.close();
  await hub?.stop();
  gate.remove();
  second.remove();
  third.remove();
  fourth.remove();
});

const header = (name: string) => page.locator('.marker-header', { has: page.locator('.marker-name', { hasText: new RegExp(`^${name}$`) }) });
const line = (text: string) => page.locator('.log-line', { hasText: new RegExp(`^${text}$`) });

test('marked sections show nested under their step, folded as their markers ask, with durations; end markers and escape codes hidden; a click unfolds', async () => {
  takeCspViolations();
  const projectId = await createProject(hub, 'marked');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, body.id, ['completed']);
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  await page.getByTestId('log-complete').waitFor();
  await header('Cleanup').waitFor({ timeout: 10_000 });

  const names = await page.locator('.marker-header .marker-name').allTextContents();
  assert.equal(names, ['Compile', 'Link it', 'Tests', 'Cleanup'], 'headers in order; Symbols is inside the folded Link it');
  const indents = await Promise.all(['Compile', 'Link it'].map((name) => header(name).locator('button.fold').evaluate((el) => parseFloat(getComputedStyle(el).marginLeft))));
  assert.ok(indents[1] > indents[0], 'nested deeper, shown further in');
  // Folded as asked: GitLab's collapsed=true and Buildkite's --- and ~~~; GitHub's group open.
  assert.is(await header('Compile').locator('button.fold').getAttribute('aria-expanded'), 'true');
  for (const name of ['Link it', 'Tests', 'Cleanup']) assert.is(await header(name).locator('button.fold').getAttribute('aria-expanded'), 'false', name);
  assert.is(await line('ld -o app main.o').count(), 0, 'folded away');
  assert.is(await line('test 1 ok').count(), 0);
  assert.is(await line('compiled').count(), 1, 'in the open group');
  // Marker lines are headers: no raw marker, no escape code, no end marker shows.
  const text = (await page.getByTestId('log-scroll').textContent()) ?? '';
  for (const raw of ['::group::', '::endgroup::', 'section_start', 'section_end', '+++', '---', '~~~']) assert.not.ok(text.includes(raw), `no ${raw} in the view`);
  assert.match((await header('Link it').locator('.section-status').textContent()) ?? '', /\d+\.\d s/, 'a duration');
  assert.ok(await header('Cleanup').evaluate((el) => el.classList.contains('muted')), '~~~ is de-emphasised');

  await header('Link it').click();
  await line('ld -o app main.o').waitFor({ timeout: 5000 });
  assert.is(await header('Link it').locator('button.fold').getAttribute('aria-expanded'), 'true');
  assert.is(await header('Symbols').locator('button.fold').getAttribute('aria-expanded'), 'true', 'the nested +++ section is open');
  await line('main at 0x1000').waitFor({ timeout: 5000 });
  await header('Symbols').click();
  await line('main at 0x1000').waitFor({ state: 'detached', timeout: 5000 });
  await header('Compile').click();
  await line('cc -c main.c').waitFor({ state: 'detached', timeout: 5000 });
  await header('Compile').click();
  await line('ld -o app main.o').waitFor({ timeout: 5000 });
  await header('Tests').click();
  await line('test 3 ok').waitFor({ timeout: 5000 });
  await page.screenshot({ path: path.join(artifactsDir, 'run-log-sections.png') });
  const violations = takeCspViolations();
  assert.equal(violations, []);
});

test('a permalink into a folded section opens it', async () => {
  const projectId = await createProject(hub, 'marked');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, body.id, ['completed']);
  const log = fs.readFileSync(path.join(hub.dir, 'logs', String(projectId), `${body.id}.log`), 'latin1');
  const at = log.indexOf('test 2 ok');
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}?at=${at}`);
  await header('Tests').waitFor({ timeout: 10_000 });
  await line('test 2 ok').waitFor({ timeout: 5000 });
  assert.is(await header('Tests').locator('button.fold').getAttribute('aria-expanded'), 'true');
});

test('a live run: a section shows open as it opens, and closed with its duration and its new nested one as they come', async () => {
  const projectId = await createProject(hub, 'live');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  await header('Live group').waitFor({ timeout: 10_000 });
  assert.match((await header('Live group').locator('.section-status').textContent()) ?? '', '◐', 'open');
  gate.open();
  // While the second step waits: what changed came over the WebSocket.
  await header('Late section').waitFor({ timeout: 10_000 });
  await page.waitForFunction(() => Array.from(document.querySelectorAll('.marker-header')).some((el) => el.textContent?.includes('Live group') && !el.textContent.includes('◐')), undefined, { timeout: 10_000 });
  assert.is(await line('late line').count(), 0, 'the collapsed one is folded');
  assert.is(await line('::endgroup::').count(), 0);
  second.open();
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
});

test('a log of 25 000 sections: the last one (past the first 20 000) shows as a header and folds and unfolds; one in the middle too, opened by a permalink', async () => {
  const projectId = await createProject(hub, 'many');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, body.id, ['completed'], 30_000);
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  await header('Final group').waitFor({ timeout: 15_000 });
  assert.is(await line('::group::Final group').count(), 0, 'a header, not a raw marker line');
  await line('final line').waitFor({ timeout: 5000 });
  await header('Final group').click();
  await line('final line').waitFor({ state: 'detached', timeout: 5000 });
  assert.is(await header('Final group').locator('button.fold').getAttribute('aria-expanded'), 'false');
  await header('Final group').click();
  await line('final line').waitFor({ timeout: 5000 });
  assert.is(await header(`g${MANY - 1}`).count(), 1, 'the one before it is a header too');
  await page.screenshot({ path: path.join(artifactsDir, 'run-log-many-sections.png') });

  // A permalink into section 12 345: the window of sections moves there.
  const log = fs.readFileSync(path.join(hub.dir, 'logs', String(projectId), `${body.id}.log`), 'latin1');
  const at = log.indexOf('line 12345\n');
  await page.goto('about:blank'); // a fresh page (a hash change alone keeps the run's view)
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}?at=${at}`);
  await header('g12345').waitFor({ timeout: 15_000 });
  await line('line 12345').waitFor({ timeout: 5000 });
  await header('g12345').click();
  await line('line 12345').waitFor({ state: 'detached', timeout: 5000 });
  assert.is(await line('::endgroup::').count(), 0, 'no end marker shows');
});

test('a live run past 20 000 sections: the sections it opens next show as headers as they come', async () => {
  const projectId = await createProject(hub, 'manyLive');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  await header(`g${MANY}`).waitFor({ timeout: 20_000 });
  third.open();
  await header('After gate').waitFor({ timeout: 10_000 });
  await line('after line').waitFor({ timeout: 5000 });
  assert.is(await line('::endgroup::').count(), 0);
  fourth.open();
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
});

test.run();
