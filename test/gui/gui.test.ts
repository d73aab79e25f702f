import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, launchBrowser, takeCspViolations } from '../helpers/browser.js';
import { createProject, nodeStep, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { setUp } from '../helpers/setup.js';

const paced = (count: number, everyMs: number) =>
  nodeStep(`let i = 0; const t = setInterval(() => { console.log('paced ' + (++i)); if (i === ${count}) clearInterval(t); }, ${everyMs});`);

/** Waits (up to 30 s) for a file named `name` in the project's document folder: the test opens the gate. */
const gate = (name: string) => `for i in $(seq 1 300); do [ -f "$HUB_DOC_ROOT/${name}" ] && break; sleep 0.1; done`;
/** A step that writes `count` lines ("<name> <i>"), then waits at its gate. */
const gated = (name: string, count: number) => ({ name, command: ['sh', '-c', `for i in $(seq 1 ${count}); do echo "${name} $i"; done; ${gate(name)}`] });

const PIPELINES = {
  demo: {
    steps: [
      { name: 'colours', command: nodeStep(`console.log('\\x1b[31mred alert\\x1b[0m and \\x1b[1mbold move\\x1b[0m'); process.stdout.write('progress 10%\\rprogress 55%\\rprogress 100%\\n');`) },
      { name: 'count', command: paced(60, 15) },
    ],
    scopes: { full: 'colours', count_only: 'count' },
  },
  // fails the first time, passes once its marker exists
  flaky: {
    steps: [
      { name: 'prepare', command: ['sh', '-c', 'echo prepared'] },
      { name: 'judge', command: ['sh', '-c', 'if [ -f "$HUB_OUTPUT_DIR/fixed" ]; then echo judged; else touch "$HUB_OUTPUT_DIR/fixed"; echo not yet; exit 3; fi'] },
    ],
    scopes: { all: 'prepare' },
  },
  long: { steps: [{ name: 'sleepy', command: ['sh', '-c', 'echo waiting; sleep 60'] }], scopes: { all: 'sleepy' } },
  restartable: { steps: [{ name: 'paced', command: paced(600, 10) }], scopes: { all: 'paced' } },
  // 400 000 lines over about 8 s: a page following it must let the oldest go
  stream: { steps: [{ name: 'stream', command: nodeStep(`let i = 0; const t = setInterval(() => { let s = ''; for (let k = 0; k < 2500; k++) s += 'stream line ' + (++i) + '\\n'; process.stdout.write(s); if (i >= 400000) clearInterval(t); }, 50);`) }], scopes: { all: 'stream' } },
  // "late" comes 1.5 s after "early", so their times differ by that much
  timed: { steps: [{ name: 'timed', command: ['sh', '-c', 'echo early; sleep 1.5; echo late; for i in 1 2 3 4 5 6; do echo "tick $i of 6"; sleep 0.2; done'] }], scopes: { all: 'timed' } },
  tall: {
    steps: [
      { name: 'warmup', command: nodeStep(`for (let i = 1; i <= 1000; i++) console.log('warm ' + i);`) },
      { name: 'tall', command: nodeStep(`for (let i = 1; i <= 6000; i++) console.log('tall ' + i);`) },
      // after it, so that "tall" is not the last step (which a finished run shows open)
      { name: 'cooldown', command: ['sh', '-c', 'echo cooled'] },
    ],
    scopes: { all: 'warmup' },
  },
  // three lines of about 2000 characters among short ones
  wide: { steps: [{ name: 'wide', command: nodeStep(`for (let i = 1; i <= 400; i++) console.log([10, 200, 300].includes(i) ? 'long ' + i + ': ' + 'lorem ipsum, dolor (sit) amet; '.repeat(64) : 'wide ' + i);`) }], scopes: { all: 'wide' } },
  // steps that wait at a gate the test opens, so that it knows where the run is
  single: { steps: [gated('slow', 5)], scopes: { all: 'slow' } },
  // 40 lines each: more than the view shows (about 22), so a reader at the top does not see the next step
  stages: { steps: [gated('one', 40), gated('two', 40), gated('three', 3)], scopes: { all: 'one' } },
  huge: { steps: [{ name: 'flood', command: nodeStep(`let s = ''; for (let i = 1; i <= 200000; i++) { s += 'flood line ' + i + '\\n'; if (i % 10000 === 0) { process.stdout.write(s); s = ''; } }`) }], scopes: { all: 'flood' } },
};

type Context = { hub: TestHub; browser: Browser; page: Page };
const guiSuite = suite<Context>('web GUI in Chromium');

/**
 * A test that also fails on any Content-Security-Policy violation a page reported while it ran:
 * the GUI must work within its policy. (In the test, not in an `after.each` hook: uvu runs that
 * hook again after a failed test, and an error it throws there hides the test's own failure.)
 */
const gui = (name: string, handler: (context: Context) => Promise<void>) =>
  guiSuite(name, async (context) => {
    takeCspViolations(); // a failed test's are not the next one's
    await handler(context);
    const violations = takeCspViolations();
    if (violations.length > 0) throw new Error(`Content-Security-Policy violations:\n${violations.join('\n')}`);
  });

setUp(guiSuite, async (context) => {
  context.hub = await startHub({ pipelines: PIPELINES });
  context.browser = await launchBrowser();
  context.page = await context.browser.newPage({ viewport: { width: 1280, height: 800 } });
  context.page.on('dialog', (dialog) => dialog.accept().catch((error: unknown) => console.error('accepting a dialog failed:', error)));
});
guiSuite.after(async ({ hub, browser }) => {
  await browser?.close();
  await hub?.stop();
});

/** A completed run of `pipeline` in a new project, its page open and its log complete. */
async function openFinishedRun(hub: TestHub, page: Page, pipeline: string, scope = 'all', timeoutMs = 15_000): Promise<{ projectId: number; runId: number }> {
  const projectId = await createProject(hub, pipeline);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope });
  await waitForRun(hub, projectId, body.id, ['completed'], timeoutMs);
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  await page.getByTestId('log-complete').waitFor();
  return { projectId, runId: body.id };
}

/** A run of `pipeline` started in a new project, its page's address; `open(step)` lets that step's gate pass. */
async function startGatedRun(hub: TestHub, pipeline: string): Promise<{ url: string; open: (step: string) => void }> {
  const projectId = await createProject(hub, pipeline);
  const { body: project } = await hub.api('GET', `/api/projects/${projectId}`);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  return { url: `${hub.url}/#/projects/${projectId}/runs/${body.id}`, open: (step) => fs.writeFileSync(path.join(project.doc_root, step), '') };
}

/** A step's section as its header's button says: open ('true') or folded ('false'). */
const expanded = (page: Page, step: string) => page.locator(`button.fold[aria-label$=" step ${step}"]`).getAttribute('aria-expanded', { timeout: 5000 });

/** Waits until the page's step bar shows `step` as `status` (the view has the record that says so). */
const stepShows = (page: Page, step: string, status: string) => page.getByTestId(`step-${step}`).filter({ hasText: `(${status})` }).waitFor({ timeout: 15_000 });

const lineCount = async (page: Page) => Number((await page.getByTestId('line-count').textContent())!.replace(/[^\d]/g, ''));

gui('create a project (with a field error first), start a run, see lines live and the final status', async ({ hub, page }) => {
  await page.goto(hub.url);
  await page.getByRole('button', { name: 'New project' }).click();
  await page.getByLabel('Name', { exact: true }).fill('GUI project');
  await page.getByLabel(/Document folder/).fill('/does/not/exist');
  await page.getByLabel('Pipeline').selectOption('demo');
  await page.getByRole('button', { name: 'Create project' }).click();
  const error = page.locator('#error-doc_root');
  await error.waitFor();
  assert.match((await error.textContent())!, 'existing directory');
  const docs = fs.mkdtempSync(path.join(hub.dir, 'gui-docs-'));
  await page.getByLabel(/Document folder/).fill(docs);
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { name: 'GUI project' }).waitFor();
  await page.screenshot({ path: path.join(artifactsDir, 'project-page-empty.png') });

  await page.getByRole('button', { name: 'Run full' }).click();
  await page.getByTestId('active-run').waitFor();
  // The log shows on the project page at once, live.
  await page.getByTestId('project-log').locator('.log-line', { hasText: /^paced \d+$/ }).first().waitFor({ timeout: 10_000 });
  await page.getByRole('link', { name: /^Run #\d+$/ }).click();
  await page.locator('.log-line', { hasText: 'paced 5' }).first().waitFor({ timeout: 10_000 });
  const runningStatus = await page.locator('[data-testid="active-run"] .status').getAttribute('data-status');
  assert.ok(['running', 'completed'].includes(runningStatus!), runningStatus!);
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  assert.match((await page.getByTestId('log-complete').textContent())!, 'completed (exit 0)');
  await page.locator('[data-testid="active-run"] [data-status="completed"]').waitFor();
  assert.is(await lineCount(page), 2 + 1 + 1 + 60 + 1, 'two step headers, colours, progress, 60 lines, end marker');
});

gui('a page opened on a finished run folds its completed steps but the last, keeps a failed step open; a step unfolds on a click, or all at once', async ({ hub, page, browser }) => {
  // The run of the first test, opened again now that it has finished.
  await page.reload();
  await page.getByTestId('log-complete').waitFor();
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0)); // the headers in view
  await page.locator('.log-line.section-header').nth(1).waitFor();
  assert.is(await expanded(page, 'colours'), 'false', 'a completed step before the last is folded');
  assert.is(await page.locator('.log-line', { hasText: 'red alert' }).count(), 0, 'folded away');
  assert.is(await expanded(page, 'count'), 'true', 'the last step is open');
  await page.locator('.log-line', { hasText: /^paced 1$/ }).waitFor();
  await page.getByRole('button', { name: 'Unfold step colours' }).click();
  await page.locator('.log-line', { hasText: 'red alert' }).waitFor();
  await page.getByRole('button', { name: 'Collapse all' }).click();
  assert.is(await page.locator('.log-line', { hasText: 'red alert' }).count(), 0);
  assert.is(await page.locator('.log-line', { hasText: /^paced 1$/ }).count(), 0);
  await page.getByRole('button', { name: 'Expand all' }).click();
  await page.locator('.log-line', { hasText: 'red alert' }).waitFor();
  await page.locator('.log-line', { hasText: /^paced 1$/ }).waitFor();

  // A failed run: the completed step before it folded, the failed one open.
  const other = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  try {
    const projectId = await createProject(hub, 'flaky');
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, body.id, ['failed']);
    await other.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
    await other.getByTestId('log-complete').waitFor();
    assert.is(await expanded(other, 'prepare'), 'false');
    assert.is(await expanded(other, 'judge'), 'true', 'the failed step is open');
    await other.locator('.log-line', { hasText: 'not yet' }).waitFor();
  } finally {
    await other.close();
  }
});

gui('ANSI colours and bold are rendered; a \\r progress line shows only its last state', async ({ hub, page }) => {
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0));
  const red = page.locator('.log-line span', { hasText: 'red alert' });
  assert.is(await red.evaluate((el) => getComputedStyle(el).color), 'rgb(187, 0, 0)');
  const bold = page.locator('.log-line span', { hasText: 'bold move' });
  assert.is(await bold.evaluate((el) => getComputedStyle(el).fontWeight), '700');
  const progress = page.locator('.log-line', { hasText: 'progress' });
  assert.is(await progress.count(), 1);
  assert.is(await progress.textContent(), 'progress 100%');
  await page.screenshot({ path: path.join(artifactsDir, 'run-log.png') });
  void hub;
});

gui('search finds lines in the loaded log; follow stops on scroll up and resumes with Jump to end', async ({ page }) => {
  await page.getByPlaceholder('Search the whole log').fill('paced 4');
  await page.getByPlaceholder('Search the whole log').press('Enter');
  await page.getByText('1 of 11 matches').waitFor(); // paced 4, 40..49
  assert.is(await page.locator('.log-line.current-match').textContent(), 'paced 4');
  await page.getByRole('button', { name: 'Next match' }).click();
  await page.getByText('2 of 11 matches').waitFor();
  assert.is(await page.locator('.log-line.current-match').textContent(), 'paced 40');
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0));
  await page.getByRole('button', { name: 'Jump to end' }).click();
  await page.getByText('Following').waitFor();
});

gui('a finished run with a single step shows it open', async ({ hub, page }) => {
  await openFinishedRun(hub, page, 'wide');
  assert.is(await page.locator('.log-line', { hasText: /^wide 400$/ }).count(), 1);
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0)); // its header in view
  assert.is(await expanded(page, 'wide'), 'true');
  await page.locator('.log-line', { hasText: /^wide 1$/ }).waitFor();
});

gui('following a one-step run live to its end: its lines stay in view when it completes', async ({ hub, page }) => {
  const run = await startGatedRun(hub, 'single');
  await page.goto(run.url);
  await page.locator('.log-line', { hasText: /^slow 5$/ }).waitFor({ timeout: 10_000 });
  run.open('slow');
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  await stepShows(page, 'slow', 'completed');
  assert.is(await expanded(page, 'slow'), 'true', 'the step watched stays open');
  assert.is(await page.locator('.log-line', { hasText: /^slow [1-5]$/ }).count(), 5, 'its lines are still there');
});

gui('following a multi-step run live: a step seen open stays open when it completes; one that ran while the reader was scrolled away folds', async ({ hub, page }) => {
  const run = await startGatedRun(hub, 'stages');
  await page.goto(run.url);
  // Following: the first step's lines are on screen while it runs.
  await page.locator('.log-line', { hasText: /^one 40$/ }).waitFor({ timeout: 10_000 });
  // The reader scrolls to the top (again, if the view was still settling on its first lines); the
  // second step runs and completes below, never on screen.
  const scroller = page.getByTestId('log-scroll');
  const header = page.locator('button.fold[aria-label$=" step one"]');
  // A batch drawn while following can put the view back at the bottom before the scroll event says
  // the reader left it: scroll again until the view says it is paused with the header in sight.
  const paused = page.getByText('Paused: scrolled up');
  // (From a little below the top each time: a scroll to where the view already is fires no event, and
  // the first one may have come while the view settled on its first lines, which ignores it.)
  await waitFor(async () => {
    await scroller.evaluate((el) => (el.scrollTop = 40));
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
    await scroller.evaluate((el) => (el.scrollTop = 0));
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    return (await paused.isVisible()) && (await header.isVisible());
  }, 'the view paused at the top', 30_000); // 10 s was not enough once beside a loaded suite (load 10+)
  run.open('one');
  await stepShows(page, 'two', 'running');
  run.open('two');
  await stepShows(page, 'three', 'running');
  assert.is(await expanded(page, 'one'), 'true', 'the step seen open stays open');
  await page.getByRole('button', { name: 'Jump to end' }).click();
  assert.is(await expanded(page, 'two'), 'false', 'the step never seen open is folded');
  assert.is(await page.locator('.log-line', { hasText: /^two \d+$/ }).count(), 0);
  // Followed to the end: the last step stays open, and the others as they were.
  await page.locator('.log-line', { hasText: /^three 3$/ }).waitFor();
  run.open('three');
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  await stepShows(page, 'three', 'completed');
  assert.is(await expanded(page, 'three'), 'true');
  assert.is(await page.locator('.log-line', { hasText: /^three 3$/ }).count(), 1);
  assert.is(await expanded(page, 'two'), 'false');
  assert.is(await expanded(page, 'one'), 'true');
});

gui('a click anywhere on a step\'s header line folds or unfolds it (not when selecting its text); its # link still links; its button still works from the keyboard', async ({ hub, page }) => {
  await openFinishedRun(hub, page, 'demo', 'full');
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0));
  const header = page.locator('.log-line.section-header', { hasText: 'step 1/2: colours' });
  assert.is(await expanded(page, 'colours'), 'false');
  await header.getByText('[hub] step 1/2: colours').click(); // on its text
  assert.is(await expanded(page, 'colours'), 'true');
  await page.locator('.log-line', { hasText: 'red alert' }).waitFor();
  await header.locator('.section-status').click(); // on its status
  assert.is(await expanded(page, 'colours'), 'false');
  await header.click({ position: { x: 900, y: 9 } }); // on the empty end of the line
  assert.is(await expanded(page, 'colours'), 'true');
  // Selecting the header's text with the mouse is not a click on it.
  const box = (await header.getByText('[hub] step 1/2: colours').boundingBox())!;
  await page.mouse.move(box.x + 5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width - 5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  assert.ok((await page.evaluate(() => getSelection()!.toString())).length > 5, 'text selected');
  assert.is(await expanded(page, 'colours'), 'true', 'still open');
  // The keyboard: Enter and Space on the button, each one toggle.
  await page.locator('button.fold[aria-label$=" step colours"]').focus();
  await page.keyboard.press('Enter');
  assert.is(await expanded(page, 'colours'), 'false');
  await page.keyboard.press('Space');
  assert.is(await expanded(page, 'colours'), 'true');
  // The line's # link opens the run at that line.
  const link = header.locator('.line-link');
  const href = (await link.getAttribute('href'))!;
  await header.hover();
  await link.click();
  await page.waitForURL((url) => url.hash === href);
  await page.locator('.log-line.current-match', { hasText: 'step 1/2: colours' }).waitFor();
});

gui('a failed run offers "Re-run from <step>", which starts at that step; breadcrumbs name the project; the log downloads', async ({ hub, page }) => {
  const projectId = await createProject(hub, 'flaky');
  const project = (await hub.api('GET', `/api/projects/${projectId}`)).body;
  const { body: first } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, first.id, ['failed']);
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${first.id}`);
  await page.locator('.breadcrumbs', { hasText: project.name }).waitFor();
  const download = page.getByRole('link', { name: 'Download log' });
  assert.is(await download.getAttribute('href'), `/api/projects/${projectId}/runs/${first.id}/logs/raw?download=1`);
  await page.getByRole('button', { name: 'Re-run from judge' }).click();
  await page.waitForURL((url) => !url.hash.endsWith(`/runs/${first.id}`));
  const again = Number(new URL(page.url()).hash.split('/').at(-1));
  const done = await waitForRun(hub, projectId, again, ['completed', 'failed']);
  assert.is(done.status, 'completed');
  assert.is(done.scope, 'from:judge');
  await page.locator('.log-line.section-header', { hasText: 'judge' }).waitFor();
  await page.getByRole('button', { name: 'Expand all' }).click();
  await page.locator('.log-line', { hasText: 'judged' }).first().waitFor();
  assert.is(await page.locator('.log-line', { hasText: 'prepared' }).count(), 0, 'the step before was not run again');
});

gui('light and dark themes: the system\'s by default, switchable, remembered; ANSI colours readable on both', async ({ hub, browser }) => {
  const page = await browser.newPage({ colorScheme: 'dark' });
  try {
    await openFinishedRun(hub, page, 'demo', 'full');
    await page.getByRole('button', { name: 'Expand all' }).click();
    await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0)); // (the view followed the last step, open, to its end)
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
    const logBackground = () => page.locator('.log-panel').evaluate((el) => getComputedStyle(el).backgroundColor);
    const red = page.locator('.log-line span', { hasText: 'red alert' });
    assert.is(await theme(), 'dark', 'the system prefers dark');
    assert.is(await logBackground(), 'rgb(17, 20, 24)');
    assert.is(await red.evaluate((el) => getComputedStyle(el).color), 'rgb(255, 102, 102)', 'a red readable on the dark log');
    await page.screenshot({ path: path.join(artifactsDir, 'run-log-dark.png') });
    await page.getByLabel('Theme').selectOption('light');
    assert.is(await theme(), 'light');
    assert.is(await logBackground(), 'rgb(251, 251, 252)');
    assert.is(await red.evaluate((el) => getComputedStyle(el).color), 'rgb(187, 0, 0)', 'and on the light one');
    await page.reload();
    await page.locator('.log-panel').waitFor();
    assert.is(await theme(), 'light', 'remembered over a reload');
    await page.getByLabel('Theme').selectOption('system');
    assert.is(await theme(), 'dark', 'back to the system\'s');
  } finally {
    await page.close();
  }
});

gui('cancel a long run from its page, with confirmation', async ({ hub, page }) => {
  const projectId = await createProject(hub, 'long');
  await page.goto(`${hub.url}/#/projects/${projectId}`);
  await page.getByRole('button', { name: 'Run all' }).click();
  await page.getByRole('button', { name: 'Queue all' }).waitFor();
  await page.getByRole('button', { name: 'Queue all' }).click();
  await page.getByTestId('queue').waitFor();
  await page.screenshot({ path: path.join(artifactsDir, 'project-page.png') });
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await page.locator('table.runs [data-status="cancelled"]').first().waitFor({ timeout: 15_000 });
  // The queued run starts when the cancelled one ends; cancel it too.
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await page.locator('table.runs [data-status="cancelled"]').nth(1).waitFor({ timeout: 15_000 });
});

gui('edit shows the server\'s error next to the field; keyboard starts a run; delete asks and removes', async ({ hub, page }) => {
  await createProject(hub, 'demo', 'taken name');
  const projectId = await createProject(hub, 'demo', 'editable');
  await page.goto(`${hub.url}/#/projects/${projectId}`);
  await page.getByRole('button', { name: 'Edit project' }).click();
  await page.getByLabel('Name', { exact: true }).fill('taken name');
  await page.getByRole('button', { name: 'Save project' }).click();
  assert.match((await page.locator('#error-name').textContent())!, 'already exists');
  assert.is(await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Name', { exact: true }).fill('renamed');
  await page.getByRole('button', { name: 'Save project' }).click();
  await page.getByRole('heading', { name: 'renamed' }).waitFor();
  // Keyboard only: focus the first start button and press Enter.
  await page.getByRole('button', { name: 'Run full' }).focus();
  await page.keyboard.press('Enter');
  await page.locator('table.runs [data-status="completed"]').waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Delete project' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  assert.is((await hub.api('GET', `/api/projects/${projectId}`)).status, 404);
});

gui('a run started elsewhere appears on the project page without reload', async ({ hub, page }) => {
  const projectId = await createProject(hub, 'demo');
  await page.goto(`${hub.url}/#/projects/${projectId}`);
  await page.getByText('Live').waitFor();
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'count_only', triggered_by: 'script' });
  await page.locator(`tr[data-run-id="${body.id}"] [data-status="completed"]`).waitFor({ timeout: 15_000 });
  assert.match((await page.locator(`tr[data-run-id="${body.id}"]`).textContent())!, 'script');
});

gui('a 200 000-line log loads earlier parts on demand, scrolls and searches without hanging', async ({ hub, page, browser }) => {
  await openFinishedRun(hub, page, 'huge', 'all', 30_000);
  assert.is(await lineCount(page), 5000);
  assert.ok((await page.locator('.log-line').count()) < 200, 'only the visible rows are in the page');
  for (let loads = 0; loads < 10; loads++) {
    const before = await lineCount(page);
    await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0));
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=line-count]')!.textContent!.replace(/[^\d]/g, '')) > n, before, { timeout: 10_000 });
  }
  assert.is(await lineCount(page), 55_000);
  await page.getByPlaceholder('Search the whole log').fill('flood line 150000');
  await page.getByPlaceholder('Search the whole log').press('Enter');
  await page.getByText('1 of 1 match').waitFor({ timeout: 10_000 });
  assert.is(await page.locator('.log-line.current-match').textContent(), 'flood line 150000');
  // A line that is not loaded: the search covers the whole log and opens the part around it.
  await page.getByPlaceholder('Search the whole log').fill('flood line 100000');
  await page.getByPlaceholder('Search the whole log').press('Enter');
  await page.getByText('1 of 1 match').waitFor({ timeout: 10_000 });
  await page.locator('.log-line.current-match', { hasText: 'flood line 100000' }).waitFor();
  await page.getByText('Showing part of the log').waitFor();
  // Its permalink opens it again, highlighted, in a fresh page.
  const link = await page.locator('.log-line.current-match .line-link').getAttribute('href');
  const other = await browser.newPage();
  await other.goto(`${hub.url}/${link}`);
  await other.locator('.log-line.current-match', { hasText: 'flood line 100000' }).waitFor();
  assert.is(await other.locator('.log-line.current-match').textContent(), 'flood line 100000');
  await other.close();
  await page.getByRole('button', { name: 'Jump to end' }).click();
  await page.locator('.log-line', { hasText: 'flood line 200000' }).waitFor();
  assert.is(await lineCount(page), 5000, 'the last 5000 lines again, once');
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await page.locator('.log-line').first().waitFor();
  const responsive = await page.evaluate(() => new Promise<number>((resolve) => { const start = performance.now(); requestAnimationFrame(() => resolve(performance.now() - start)); }));
  console.log(`  (200k-line log: next animation frame after scrolling in ${responsive.toFixed(1)} ms)`);
});

gui('the step bar shows each step with its status and duration; a step opens its part of the log', async ({ hub, page }) => {
  await openFinishedRun(hub, page, 'demo', 'full');
  for (const name of ['colours', 'count']) assert.match((await page.getByTestId(`step-${name}`).textContent())!, /✓.*\d+\.\d s/);
  await page.getByTestId('step-count').getByRole('button').click();
  await page.locator('.log-line.current-match', { hasText: '[hub] step 2/2: count' }).waitFor();
});

gui('following a long fast run keeps at most 200 000 lines (the oldest go, and load again by offset); the heap levels off', async ({ hub, page }) => {
  const projectId = await createProject(hub, 'stream');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  const heap = () => page.evaluate(() => (performance as unknown as { memory: { usedJSHeapSize: number } }).memory.usedJSHeapSize / 1024 ** 2);
  const samples: { lines: number; heapMb: number }[] = [];
  let maxLines = 0;
  while (!(await page.getByTestId('log-complete').isVisible())) {
    const lines = await lineCount(page);
    maxLines = Math.max(maxLines, lines);
    samples.push({ lines, heapMb: await heap() });
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (samples.length > 120) throw new Error('the run did not end within a minute');
  }
  await page.locator('.log-line', { hasText: 'stream line 400000' }).waitFor();
  assert.ok(maxLines <= 200_000, `at most 200 000 lines held, saw ${maxLines}`);
  assert.ok(await page.getByTestId('dropped').isVisible(), 'says older lines were let go');
  const held = await lineCount(page);
  const end = await heap();
  console.log(`  (following 400 000 lines: at most ${maxLines} held; heap ${samples.map((s) => s.heapMb.toFixed(0)).join(' → ')} → ${end.toFixed(0)} MB)`);
  assert.ok(Math.max(...samples.map((s) => s.heapMb)) < 120, 'the heap stays bounded');
  // Scrolling to the top loads the lines before the held ones again, by offset, with no gap: the
  // view stays on the old first line, with the line before it just above.
  await page.getByTestId('log-scroll').evaluate((el) => (el.scrollTop = 0));
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=line-count]')!.textContent!.replace(/[^\d]/g, '')) > n, held, { timeout: 10_000 });
  const loaded = await lineCount(page);
  const at = loaded - held;
  const text = (index: number) => page.locator(`.log-line[data-index="${index}"]`).textContent();
  const [previous, firstHeld] = [await text(at - 1), await text(at)];
  const number = Number(/stream line (\d+)/.exec(firstHeld ?? '')?.[1]);
  assert.ok(number > 1, `the first held line was ${firstHeld}`);
  assert.is(previous, `stream line ${number - 1}`, 'the line before it, loaded again');
});

gui('kill and restart the server mid-run: the log resumes with no duplicate and no gap', async ({ hub, browser }) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const projectId = await createProject(hub, 'restartable');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
  await page.locator('.log-line', { hasText: 'paced 50' }).first().waitFor({ timeout: 10_000 });
  const port = new URL(hub.url).port;
  await hub.stop('SIGKILL');
  await page.getByText('Reconnecting…').waitFor();
  const restarted = await startHub({ pipelines: PIPELINES, dir: hub.dir, env: { PORT: port } });
  Object.assign(hub, restarted); // the suite's after() stops the new one
  await page.getByTestId('log-complete').waitFor({ timeout: 30_000 });
  assert.is(await lineCount(page), 1 + 600 + 1, 'header, 600 lines, end marker: nothing twice, nothing missing');
  for (const n of [1, 49, 50, 51, 300, 599, 600]) {
    await page.getByPlaceholder('Search the whole log').fill(`paced ${n}`);
    await page.getByPlaceholder('Search the whole log').press('Enter');
    const expected = Array.from({ length: 600 }, (_, i) => `paced ${i + 1}`).filter((line) => line.startsWith(`paced ${n}`)).length;
    await page.getByText(`1 of ${expected} match`).waitFor({ timeout: 5000 });
    // and the page holds each of them once
    assert.is(await page.getByTestId('match-count').getAttribute('data-loaded-matches'), String(expected), `paced ${n}`);
  }
  await page.close();
});

gui('long lines wrap when asked (remembered): rows stack without overlap, nothing scrolls sideways, links still land on their line', async ({ hub, browser }) => {
  // A context of its own: the setting stays out of the other tests, and is shared by its pages.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    const { projectId, runId } = await openFinishedRun(hub, page, 'wide');
    const toggle = page.getByRole('checkbox', { name: 'Wrap lines' });
    assert.is(await toggle.isChecked(), false, 'off by default');
    const scroller = page.getByTestId('log-scroll');
    // Scrolled up by the reader: no longer following.
    await scroller.evaluate((el) => (el.scrollTop = 100));
    await page.getByText('Paused: scrolled up').waitFor();
    await scroller.evaluate((el) => (el.scrollTop = 0));
    const long = page.locator('.log-line', { hasText: 'long 10:' });
    const box = async (locator: ReturnType<Page['locator']>) => (await locator.boundingBox())!;
    assert.is((await box(long)).height, 18, 'unwrapped: one row');
    assert.ok(await scroller.evaluate((el) => el.scrollWidth > el.clientWidth + 1000), 'unwrapped: the log scrolls sideways');

    await toggle.check();
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLElement>('.log-line')).some((el) => el.offsetHeight > 18), undefined, { timeout: 5000 });
    const index = Number(await long.getAttribute('data-index'));
    const [above, wrapped, below] = await Promise.all([index - 1, index, index + 1].map((i) => box(page.locator(`.log-line[data-index="${i}"]`))));
    assert.ok(wrapped.height >= 18 * 10, `wrapped: about 2000 characters take many rows, got ${wrapped.height} px`);
    assert.is(wrapped.height % 18, 0, 'a whole number of rows');
    assert.ok(Math.abs(above.y + above.height - wrapped.y) < 0.5, 'starts right below the line before');
    assert.ok(Math.abs(wrapped.y + wrapped.height - below.y) < 0.5, `the next line starts right below it (${wrapped.y + wrapped.height} vs ${below.y})`);
    assert.is(await page.locator(`.log-line[data-index="${index + 1}"]`).textContent(), 'wide 11');
    assert.ok(await long.evaluate((el) => el.scrollHeight <= el.clientHeight), 'its text fits its rows (none clipped)');
    assert.ok(await scroller.evaluate((el) => el.scrollWidth <= el.clientWidth + 1), 'nothing scrolls sideways');
    assert.ok((await page.locator('.log-line').count()) < 200, 'still only the visible rows in the page');
    await page.screenshot({ path: path.join(artifactsDir, 'run-log-wrapped.png') });

    await page.reload();
    await page.getByTestId('log-complete').waitFor();
    assert.is(await toggle.isChecked(), true, 'remembered over a reload');
    const inView = async (locator: ReturnType<Page['locator']>) => {
      const [line, view] = [await box(locator), await box(scroller)];
      return line.y >= view.y - 0.5 && line.y + line.height <= view.y + view.height + 0.5;
    };
    await page.getByPlaceholder('Search the whole log').fill('wide 395');
    await page.getByPlaceholder('Search the whole log').press('Enter');
    await page.locator('.log-line.current-match', { hasText: 'wide 395' }).waitFor();
    assert.ok(await inView(page.locator('.log-line.current-match')), 'a search match is scrolled into view');

    // A permalink to a line after the long ones, in a fresh page of this browser: opened there, in view.
    const raw = (await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs/raw`)).body as string;
    const offset = Buffer.byteLength(raw.slice(0, raw.indexOf('\nwide 390\n') + 1));
    const other = await context.newPage();
    await other.goto(`${hub.url}/#/projects/${projectId}/runs/${runId}?at=${offset}`);
    const target = other.locator('.log-line.current-match', { hasText: 'wide 390' });
    await target.waitFor();
    assert.is(await other.getByRole('checkbox', { name: 'Wrap lines' }).isChecked(), true);
    const otherScroller = other.getByTestId('log-scroll');
    const [line, view] = [await box(target), await box(otherScroller)];
    assert.ok(line.y >= view.y && line.y + line.height <= view.y + view.height, `the linked line is in view (${line.y} in ${view.y}..${view.y + view.height})`);
    // Earlier lines (a long one among them, and the step's header) load in above the first one held:
    // it stays at the top of the view (the step the reader is inside stays open).
    const held = await lineCount(other);
    await otherScroller.evaluate((el) => (el.scrollTop = 0));
    await other.waitForFunction((n) => Number(document.querySelector('[data-testid=line-count]')!.textContent!.replace(/[^\d]/g, '')) > n, held, { timeout: 10_000 });
    const firstHeld = other.locator('.log-line', { hasText: /^wide 190$/ });
    await firstHeld.waitFor();
    assert.ok(Math.abs((await box(firstHeld)).y - (await box(otherScroller)).y) < 1, 'the first line held before stays at the top');
  } finally {
    await context.close();
  }
});

gui('a completed step whose header loads in above the reader (scrolling up) stays open, the others loaded with it fold; times on and off keep the reader\'s place', async ({ hub, page }) => {
  const { projectId, runId } = await openFinishedRun(hub, page, 'tall');
  // The last 5000 lines: the step's header is not among them, so nothing is folded yet.
  const scroller = page.getByTestId('log-scroll');
  const held: string = (await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs?tail=5000`)).body.lines[0];
  assert.match(held, /^tall \d+$/);
  await scroller.evaluate((el) => (el.scrollTop = 0));
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=line-count]')!.textContent!.replace(/[^\d]/g, '')) > 5000, undefined, { timeout: 10_000 });
  const firstHeld = page.locator('.log-line', { hasText: new RegExp(`^${held}$`) });
  await firstHeld.waitFor();
  const [line, view] = [(await firstHeld.boundingBox())!, (await scroller.boundingBox())!];
  assert.ok(Math.abs(line.y - view.y) < 1, `the first line held before stays at the top (${line.y} vs ${view.y})`);
  // Scrolled up to the step's header (and the step before it, loaded with it).
  const header = page.getByRole('button', { name: 'Fold step tall' });
  const nextFrame = () => page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  for (let i = 0; i < 20 && !(await header.isVisible()); i++) {
    await scroller.evaluate((el) => (el.scrollTop = Math.max(0, el.scrollTop - 1000)));
    await nextFrame(); // drawn before looking
  }
  assert.is(await header.getAttribute('aria-expanded'), 'true', 'its header shows it open');
  await scroller.evaluate((el) => (el.scrollTop = 0));
  assert.is(await page.getByRole('button', { name: 'Unfold step warmup' }).getAttribute('aria-expanded'), 'false', 'the step before, which the reader was never inside, is folded');

  // Times on, then off, while scrolled up: the line at the top of the view stays there.
  await scroller.evaluate((el) => (el.scrollTop = 18 * 300));
  await nextFrame();
  const topLine = () => page.evaluate(() => {
    const view = document.querySelector('[data-testid=log-scroll]')!.getBoundingClientRect();
    const rows = Array.from(document.querySelectorAll<HTMLElement>('.log-line')).filter((row) => row.getBoundingClientRect().top >= view.top - 1);
    rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
    if (rows.length === 0) return ''; // not drawn yet
    return Array.from(rows[0].childNodes).filter((node) => !(node instanceof HTMLElement && ['stamp', 'line-link'].includes(node.className))).map((node) => node.textContent).join('');
  });
  const before = await topLine();
  assert.match(before, /^tall \d+$/);
  await page.getByLabel('Times').selectOption('clock');
  await page.locator('.log-line .stamp').first().waitFor();
  await waitFor(async () => (await topLine()) === before, `"${before}" at the top with times on (now "${await topLine()}")`, 5000);
  await page.getByLabel('Times').selectOption('off');
  await page.locator('.log-line .stamp').first().waitFor({ state: 'detached' });
  await waitFor(async () => (await topLine()) === before, `"${before}" at the top with times off again (now "${await topLine()}")`, 5000);

  // A permalink to a line near the step's header (loaded with it): the step holding it starts open.
  const raw = (await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs/raw`)).body as string;
  const offset = Buffer.byteLength(raw.slice(0, raw.indexOf('\ntall 100\n') + 1));
  await page.goto(`${hub.url}/#/projects/${projectId}/runs/${runId}?at=${offset}`);
  await page.reload();
  // (folded, the step would show its header only, and the line would not be there)
  await page.locator('.log-line.current-match', { hasText: /^tall 100$/ }).waitFor({ timeout: 10_000 });
});

gui('line times: off by default, the time of day or the time since the start when asked (remembered); the log file is unchanged', async ({ hub, browser }) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    const projectId = await createProject(hub, 'timed');
    await page.goto(`${hub.url}/#/projects/${projectId}`);
    await page.getByRole('button', { name: 'Run all' }).click();
    const runId: number = await waitFor(async () => (await hub.api('GET', `/api/projects/${projectId}/runs`)).body[0]?.id, 'the run');
    await page.goto(`${hub.url}/#/projects/${projectId}/runs/${runId}`);
    await page.locator('.log-line', { hasText: 'early' }).waitFor();
    const times = page.getByLabel('Times');
    assert.is(await times.inputValue(), 'off');
    assert.is(await page.locator('.log-line .stamp').count(), 0, 'no time column by default');
    // Turned on while the run goes on: the view reloads and follows with times.
    await times.selectOption('elapsed');
    await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
    // Opened again once the run is over: its times are read from the records, as an HTTP page's are
    // (live, a line past the last record is stamped "now", a few ms from its record's time).
    await page.reload();
    await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
    const stampOf = (text: string) => page.locator('.log-line', { hasText: new RegExp(`^.*${text}$`) }).locator('.stamp').textContent();
    const elapsed = (stamp: string | null) => {
      const match = /^\+(\d+):(\d\d)\.(\d{3})$/.exec(stamp ?? '');
      assert.ok(match, `"${stamp}" is +M:SS.mmm`);
      return (Number(match![1]) * 60 + Number(match![2])) * 1000 + Number(match![3]);
    };
    const [early, late] = [elapsed(await stampOf('early')), elapsed(await stampOf('late'))];
    // The times the server gives for those lines: the runner's samples (a starved runner samples
    // late, so the 1.5 s sleep shows as what was sampled, not always as 1.5 s on a loaded machine).
    const { body: page0 } = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs?offset=0&timestamps=1`);
    const served = (text: string) => page0.times[page0.lines.indexOf(text)] as number;
    assert.ok(Math.abs(late - early - (served('late') - served('early'))) <= 1, `the page shows the server's times: "late" ${late - early} ms after "early", the server says ${served('late') - served('early')}`);
    assert.ok(late - early >= 1000 && late - early < 10_000, `"late" came 1.5 s after "early": ${early} and ${late} ms since the start`);
    await page.screenshot({ path: path.join(artifactsDir, 'run-log-times.png') });
    await times.selectOption('clock');
    assert.match((await stampOf('late'))!, /^\d\d:\d\d:\d\d\.\d{3}$/);
    const title = await page.locator('.log-line', { hasText: /late$/ }).locator('.stamp').getAttribute('title');
    const { body: run } = await hub.api('GET', `/api/runs/${runId}`);
    const at = Date.parse(title!);
    assert.ok(at >= Date.parse(run.started_at) && at <= Date.parse(run.finished_at) + 1000, `${title} within the run`);
    // Remembered, and the file holds only what the step wrote.
    await page.reload();
    await page.locator('.log-line', { hasText: /late$/ }).locator('.stamp').waitFor();
    assert.is(await page.getByLabel('Times').inputValue(), 'clock');
    const raw = await (await fetch(`${hub.url}/api/projects/${projectId}/runs/${runId}/logs/raw`)).text();
    assert.match(raw, /\nearly\nlate\ntick 1 of 6\n/);
  } finally {
    await context.close();
  }
});

gui('the GUI cannot be framed by another page, and an injected inline script does not run', async ({ hub, browser }) => {
  // Another site (another origin on loopback: a data: page may not frame a loopback one at all) framing the GUI.
  const site = http.createServer((_request, response) => response.end(`<!doctype html><iframe src="${hub.url}/" width="600" height="400"></iframe>`));
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const page = await browser.newPage();
  try {
    await page.goto(`http://localhost:${(site.address() as AddressInfo).port}/`);
    const frame = await waitFor(() => page.frames().find((f) => f !== page.mainFrame() && f.url() !== 'about:blank'), 'the frame to navigate');
    await frame.waitForLoadState('load');
    const rendered = await frame.evaluate(() => document.querySelector('#app') !== null).catch(() => false);
    assert.is(rendered, false, `the GUI loaded inside another site's frame (${frame.url()})`);
    await page.goto(`${hub.url}/`);
    await page.getByRole('link', { name: 'Run hub' }).waitFor();
    const ran = await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      document.body.append(script);
      return (window as unknown as { injected?: boolean }).injected === true;
    });
    assert.is(ran, false, 'an inline script ran');
    const violations = await waitFor(() => {
      const taken = takeCspViolations();
      return taken.length > 0 ? taken : null;
    }, 'the violation to be reported');
    assert.match(violations.join('\n'), /script-src/);
    // The sign-in page's inline style is allowed by its hash: it applies, and reports nothing.
    await page.goto(`${hub.url}/login`);
    const background = await page.getByRole('button', { name: 'Sign in' }).evaluate((button) => getComputedStyle(button).backgroundColor);
    assert.is(background, 'rgb(31, 95, 191)', 'the sign-in page\'s style applies');
  } finally {
    await page.close();
    site.close();
  }
});

guiSuite.run();
