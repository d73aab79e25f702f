import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, takeCspViolations } from '../helpers/browser.js';
import { fileGate } from '../helpers/fileGate.js';
import { createProject, nodeStep, sh, startHub, waitForRun, type TestHub } from '../helpers/hub.js';

// Search, following and a reader's place, through marked sections that fold.

const start = (key: string, title: string, collapsed = false) => `printf '\\033[0Ksection_start:1700000000:${key}${collapsed ? '[collapsed=true]' : ''}\\r\\033[0K${title}\\n'`;
const end = (key: string) => `printf '\\033[0Ksection_end:1700000001:${key}\\r\\033[0K\\n'`;
const lines = (prefix: string, from: number, to: number) => `for i in $(seq ${from} ${to}); do echo "${prefix} $i"; done`;

// A match two folded GitLab sections deep, in the middle of a log longer than the page first loads
// (its last 5000 lines); another in a folded Buildkite section near the end, among those loaded.
const SEARCHED = [
  lines('filler', 1, 6000),
  start('outer', 'Outer', true),
  lines('outer line', 1, 3),
  start('inner', 'Inner', true),
  `echo 'needle one'`,
  end('inner'),
  end('outer'),
  lines('filler', 6001, 12000),
  `echo '--- Late'`,
  lines('late line', 1, 3),
  `echo 'needle two'`,
  `echo '+++ Tail'`,
  lines('tail', 1, 3),
].join('; ');

// Steadily, every 40 ms, a line; around them sections open and close, folded GitLab ones, open
// GitHub groups, and a Buildkite one folded then opened (`^^^ +++`) while the page follows.
const TICKS = 180;
const STEADY = nodeStep(`
let i = 0;
const w = (s) => process.stdout.write(s + '\\n');
const t = setInterval(() => {
  i++;
  const k = i % 12;
  if (k === 1) w('\\x1b[0Ksection_start:' + (1700000000 + i) + ':s' + i + '[collapsed=true]\\r\\x1b[0KFolded ' + i);
  if (k === 6) w('::group::Open ' + i);
  if (k === 10) w('--- Bk ' + i);
  if (k === 0) w('^^^ +++');
  w('tick ' + i);
  if (k === 5) w('\\x1b[0Ksection_end:' + (1700000000 + i) + ':s' + (i - 4) + '\\r\\x1b[0K');
  if (k === 9) w('::endgroup::');
  if (i === ${TICKS}) { clearInterval(t); w('all done'); }
}, 40);`);

// A reader scrolled up to "tick 30": below, sections open and fold; above, a folded Buildkite
// section opens (`^^^ +++` opens the last one closed, "Above").
const gates = [fileGate(), fileGate(), fileGate()];
const READER = [
  start('wrap', 'Wrap'),
  `echo '--- Above'`,
  lines('above', 1, 5),
  end('wrap'),
  lines('tick', 1, 100),
  gates[0].waitCommand,
  start('below', 'Below folded', true),
  lines('folded', 1, 10),
  end('below'),
  `echo '::group::Below open'`,
  lines('tick', 101, 120),
  `echo '::endgroup::'`,
  gates[1].waitCommand,
  `echo '^^^ +++'`,
  lines('tick', 121, 140),
  gates[2].waitCommand,
].join('; ');

let hub: TestHub;
let browser: Browser;
let page: Page;

test.before(async () => {
  hub = await startHub({
    pipelines: {
      searched: { steps: [{ name: 'search', command: sh(SEARCHED) }], scopes: { all: 'search' } },
      steady: { steps: [{ name: 'steady', command: STEADY }], scopes: { all: 'steady' } },
      reader: { steps: [{ name: 'reader', command: sh(READER) }], scopes: { all: 'reader' } },
    },
  });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
});

test.after(async () => {
  await browser?.close();
  await hub?.stop();
  for (const gate of gates) gate.remove();
});

const header = (name: string) => page.locator('.marker-header', { has: page.locator('.marker-name', { hasText: new RegExp(`^${name}$`) }) });
const expanded = (name: string) => header(name).locator('button.fold').getAttribute('aria-expanded', { timeout: 5000 });
const line = (text: string) => page.locator('.log-line', { hasText: new RegExp(`^${text}$`) });
const scroller = () => page.getByTestId('log-scroll');

/** The element lies wholly within the log's scroller as shown. */
async function inView(locator: ReturnType<Page['locator']>): Promise<boolean> {
  const [box, view] = [await locator.boundingBox(), await scroller().boundingBox()];
  return box !== null && view !== null && box.y >= view.y - 0.5 && box.y + box.height <= view.y + view.height + 0.5;
}

async function startRun(pipeline: string): Promise<{ projectId: number; runId: number; url: string }> {
  const projectId = await createProject(hub, pipeline);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  return { projectId, runId: body.id, url: `${hub.url}/#/projects/${projectId}/runs/${body.id}` };
}

/**
 * Notes, at every frame the page draws from now on, what `probe` (a function's source, run in the
 * page with the scroller) says is wrong, if anything; `takeFrames` returns how many frames were
 * seen and what was wrong in them.
 */
async function watchFrames(probe: string): Promise<void> {
  await page.evaluate((source) => {
    const check = new Function('el', `return (${source})(el)`) as (el: HTMLElement) => string | null;
    const state = { frames: 0, wrong: [] as string[], stop: false };
    (window as unknown as { frameWatch: typeof state }).frameWatch = state;
    const frame = () => {
      if (state.stop) return;
      const el = document.querySelector<HTMLElement>('[data-testid=log-scroll]');
      if (el) {
        state.frames++;
        const wrong = check(el);
        if (wrong && state.wrong.length < 20) state.wrong.push(wrong);
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }, probe);
}

const takeFrames = () =>
  page.evaluate(() => {
    const state = (window as unknown as { frameWatch: { frames: number; wrong: string[]; stop: boolean } }).frameWatch;
    state.stop = true;
    return { frames: state.frames, wrong: state.wrong };
  });

test('search finds lines inside folded sections: the sections holding a match open and the match shows in view (one not loaded, two deep; one among the loaded lines)', async () => {
  takeCspViolations();
  const { projectId, runId, url } = await startRun('searched');
  await waitForRun(hub, projectId, runId, ['completed']);
  await page.goto(url);
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  await header('Late').waitFor({ timeout: 10_000 });
  assert.is(await expanded('Late'), 'false', 'Buildkite --- starts folded');
  assert.is(await line('needle two').count(), 0);

  const box = page.getByPlaceholder('Search the whole log');
  await box.fill('needle');
  await box.press('Enter');
  await page.getByText('1 of 2 matches').waitFor({ timeout: 10_000 });
  // The first is not among the loaded lines: the part around it opens, its two sections open.
  const current = page.locator('.log-line.current-match');
  await current.filter({ hasText: /^needle one$/ }).waitFor({ timeout: 10_000 });
  assert.is(await expanded('Outer'), 'true', 'the outer section holding it opened');
  assert.is(await expanded('Inner'), 'true', 'the inner one too');
  assert.ok(await inView(current), 'the match is in view');

  await page.getByRole('button', { name: 'Next match' }).click();
  await page.getByText('2 of 2 matches').waitFor({ timeout: 10_000 });
  await current.filter({ hasText: /^needle two$/ }).waitFor({ timeout: 10_000 });
  assert.is(await expanded('Late'), 'true', 'the Buildkite section holding it opened');
  assert.ok(await inView(current), 'the match is in view');
  assert.equal(takeCspViolations(), []);
});

test('following a live run while sections open, fold and unfold: every frame shows the end of the log', async () => {
  const { projectId, runId, url } = await startRun('steady');
  await page.goto(url);
  await line('tick 6').waitFor({ timeout: 10_000 }); // (1 to 5 are in a folded section)
  await page.getByText('Following').waitFor({ timeout: 5000 });
  // At the bottom, and the last row (the last line shown) wholly in view.
  await watchFrames(`(el) => {
    const rows = Array.from(el.querySelectorAll('.log-line'));
    const last = rows.reduce((a, b) => (b.offsetTop > (a?.offsetTop ?? -1) ? b : a), null);
    const height = el.firstElementChild.offsetHeight;
    if (el.scrollTop + el.clientHeight < el.scrollHeight - 1) return 'not at the end: ' + el.scrollTop + ' + ' + el.clientHeight + ' of ' + el.scrollHeight + ', last row ' + (last && last.textContent);
    if (!last || last.offsetTop + last.offsetHeight !== height || last.offsetTop < el.scrollTop) return 'the last row not in view: ' + (last && last.textContent);
    return null;
  }`);
  await waitForRun(hub, projectId, runId, ['completed'], 30_000);
  await line('all done').waitFor({ timeout: 10_000 });
  await page.getByTestId('log-complete').waitFor({ timeout: 10_000 });
  const { frames, wrong } = await takeFrames();
  console.log(`  following: ${frames} frames watched`);
  assert.ok(frames > 50, `frames were watched (${frames})`);
  assert.equal(wrong, [], 'every frame at the end');
  assert.ok(await inView(line('all done')), 'the last line in view');
  assert.ok((await header(`Folded ${TICKS - 11}`).count()) === 1 && (await expanded(`Folded ${TICKS - 11}`)) === 'false', 'a folded section came while following');
  assert.is(await expanded(`Bk ${TICKS - 2}`), 'true', 'a Buildkite section opened by ^^^ +++');
  await page.getByText('Following').waitFor({ timeout: 5000 });
});

test('a reader scrolled up stays on the same line while sections open and fold below and a folded one above opens', async () => {
  const { url } = await startRun('reader');
  await page.goto(url);
  await line('tick 100').waitFor({ timeout: 10_000 });
  await scroller().evaluate((el) => (el.scrollTop = 0));
  await page.getByText('Paused: scrolled up').waitFor({ timeout: 5000 });
  await header('Above').waitFor({ timeout: 10_000 });
  assert.is(await expanded('Above'), 'false');
  // "tick 30" at the top of the view (70 lines below it).
  await line('tick 30').evaluate((row) => (document.querySelector('[data-testid=log-scroll]')!.scrollTop = (row as HTMLElement).offsetTop));
  const topLine = `(el) => {
    const row = Array.from(el.querySelectorAll('.log-line')).find((r) => r.offsetTop <= el.scrollTop && el.scrollTop < r.offsetTop + r.offsetHeight);
    return row ? row.textContent + ' at ' + (el.scrollTop - row.offsetTop) : 'no row at the top';
  }`;
  const top = () => scroller().evaluate((el, source) => (new Function('el', `return (${source})(el)`) as (el: Element) => string)(el), topLine);
  const held = await top();
  assert.match(held, /^tick 30 at /);
  await watchFrames(`(el) => { const now = (${topLine})(el); return now === ${JSON.stringify(held)} ? null : now; }`);

  const height = () => scroller().evaluate((el) => (el.firstElementChild as HTMLElement).offsetHeight);
  const rowHeight = await line('tick 30').evaluate((el) => el.getBoundingClientRect().height);
  const before = await height();
  const settled = (what: string, done: Promise<unknown>) =>
    done.catch(async (error: unknown) => {
      throw new Error(`${what} (${await height()} px of rows; frames: ${JSON.stringify(await takeFrames())}): ${String(error)}`);
    });
  const linesAre = (count: number) => settled(`${count} lines`, page.waitForFunction((n) => document.querySelector('[data-testid=line-count]')!.textContent!.replace(/[^\d]/g, '') === String(n), count, { timeout: 10_000 }));
  const rowsGrownTo = (px: number) => settled(`rows ${px} px high`, page.waitForFunction((target) => (document.querySelector('[data-testid=log-scroll]')!.firstElementChild as HTMLElement).offsetHeight >= target, px, { timeout: 10_000 }));
  const lines0 = Number((await page.getByTestId('line-count').textContent())!.replace(/[^\d]/g, ''));
  // Below: a folded section of 10 lines (its header shows), an open group of 20 (21 rows); 34 lines.
  gates[0].open();
  await linesAre(lines0 + 34);
  await rowsGrownTo(before + 22 * rowHeight);
  // Then "Above" opens (its 5 lines show, above the reader) and 20 more lines come (21 lines with the marker).
  gates[1].open();
  await linesAre(lines0 + 55);
  await rowsGrownTo(before + (22 + 5 + 20) * rowHeight);
  gates[2].open();
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  const { frames, wrong } = await takeFrames();
  console.log(`  reader: ${frames} frames watched, the rows grew from ${before} to ${await height()} px`);
  assert.equal(wrong, [], `the top line stayed ${held}`);
  assert.is(await top(), held);
  await page.getByText('Paused: scrolled up').waitFor({ timeout: 5000 });
  await scroller().evaluate((el) => (el.scrollTop = 0));
  assert.is(await expanded('Above'), 'true', 'the section above opened');
  await line('above 3').waitFor({ timeout: 5000 });
  await scroller().evaluate((el) => (el.scrollTop = el.scrollHeight));
  assert.is(await expanded('Below folded'), 'false', 'the one below came folded');
  assert.is(await expanded('Below open'), 'true');
  assert.is(await line('folded 1').count(), 0);
});

test.run();
