import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, takeCspViolations } from '../helpers/browser.js';
import { createProject, groupsStep, logFileOf, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';

const HUGE = 100_000;
/**
 * The longest the page's main thread may be busy at once. Most of its longest tasks are the browser's
 * own work on a part of 90 000 lines read at once (parsing, layout); on a 2-core machine shared with
 * other work (load average above 10) they took 0.3 to 0.95 s, here and there; a page that hangs takes
 * many seconds.
 */
const MAX_STALL_MS = 1500;
/** The page's JS heap after a collection, at each stage (about 13 MB with 160 000 lines held): bounded, whatever the log's size. */
const MAX_HEAP_MB = 64;

let hub: TestHub;
let browser: Browser;
let page: Page;

test.before(async () => {
  hub = await startHub({
    pipelines: {
      // 100 000 GitHub groups of one line each, then one named group.
      huge: { steps: [{ name: 'huge', command: groupsStep(HUGE) }], scopes: { all: 'huge' } },
    },
  });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
  // Every task that keeps the main thread busy past 50 ms (the browser's "long task"), and the
  // longest gap between animation frames: how long the page did not answer.
  await page.addInitScript(() => {
    const probe = { longest: 0, total: 0, count: 0, frameGap: 0 };
    (window as unknown as { stalls: typeof probe }).stalls = probe;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        probe.longest = Math.max(probe.longest, entry.duration);
        probe.total += entry.duration;
        probe.count++;
      }
    }).observe({ type: 'longtask', buffered: true });
    let last = performance.now();
    const frame = (now: number) => {
      probe.frameGap = Math.max(probe.frameGap, now - last);
      last = now;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
});

test.after(async () => {
  await browser?.close();
  await hub?.stop();
});

type Stalls = { longest: number; total: number; count: number; frameGap: number };
/** The stalls since the last call (then starts counting afresh). */
const takeStalls = () =>
  page.evaluate(() => {
    const probe = (window as unknown as { stalls: Stalls }).stalls;
    const taken = { ...probe };
    Object.assign(probe, { longest: 0, total: 0, count: 0, frameGap: 0 });
    return taken;
  });
const describe = (what: string, s: Stalls) => `${what}: longest task ${Math.round(s.longest)} ms, ${s.count} long tasks (${Math.round(s.total)} ms), longest frame gap ${Math.round(s.frameGap)} ms`;

/** The page's JS heap in use after a full collection, in MB. */
async function heapMb(): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('HeapProfiler.collectGarbage');
    return (await cdp.send('Runtime.getHeapUsage')).usedSize / 1024 / 1024;
  } finally {
    await cdp.detach();
  }
}

const header = (name: string) => page.locator('.marker-header', { has: page.locator('.marker-name', { hasText: new RegExp(`^${name}$`) }) });
const line = (text: string) => page.locator('.log-line', { hasText: new RegExp(`^${text}$`) });
const scroller = () => page.getByTestId('log-scroll');

const lineCount = async () => Number((await page.getByTestId('line-count').textContent())!.replace(/[^\d]/g, ''));

/**
 * Scrolls to the top or the bottom of the lines held; a part before or after them loads. (The view
 * must not move the reader back while sections are read for the lines it shows.)
 */
async function scrollAndLoad(to: 'top' | 'bottom') {
  const before = await lineCount();
  await scroller().evaluate((el, where) => (el.scrollTop = where === 'top' ? 0 : el.scrollHeight), to);
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=line-count]')!.textContent!.replace(/[^\d]/g, '')) > n, before, { timeout: 15_000 }).catch(async (error: unknown) => {
    const [top, height] = await scroller().evaluate((el) => [el.scrollTop, el.scrollHeight]);
    throw new Error(`scrolled to the ${to} of ${before} lines, nothing more loaded (the view at ${top} of ${height} px): ${String(error)}`);
  });
}

/** Folds and unfolds the section `name` by its header; its line `text` goes and comes back. */
async function foldAndUnfold(name: string, text: string) {
  await header(name).click();
  await line(text).waitFor({ state: 'detached', timeout: 5000 });
  assert.is(await header(name).locator('button.fold').getAttribute('aria-expanded'), 'false', name);
  await header(name).click();
  await line(text).waitFor({ timeout: 5000 });
}

test(`a log of ${HUGE} sections: scrolled up far, opened in the middle and at the end, folded there; the page never stalls long and its heap stays bounded`, async () => {
  takeCspViolations();
  const projectId = await createProject(hub, 'huge');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, body.id, ['completed'], 40_000);
  const log = fs.readFileSync(logFileOf(hub, projectId, body.id), 'latin1');
  const runUrl = `${hub.url}/#/projects/${projectId}/runs/${body.id}`;
  const figures: string[] = [];
  const phases: Stalls[] = [];
  const heaps: number[] = [];
  const phase = async (what: string) => {
    const stalls = await takeStalls();
    phases.push(stalls);
    const heap = await heapMb();
    heaps.push(heap);
    figures.push(`${describe(what, stalls)}; JS heap then ${heap.toFixed(1)} MB`);
    await takeStalls(); // (the collection's own time is not the page's)
  };

  // The end: the tail of the log, its last sections as headers.
  await page.goto(runUrl);
  await page.getByTestId('log-complete').waitFor({ timeout: 15_000 });
  await header('Final group').waitFor({ timeout: 15_000 });
  await foldAndUnfold('Final group', 'final line');
  await phase('opened at the end, folded there');

  // Scrolled up: each time at the top an earlier part loads, its sections with it.
  for (let loads = 0; loads < 12; loads++) await scrollAndLoad('top');
  const held = await lineCount();
  // The first loaded line (every line a group's header, its line or its end): its section shows as a header.
  const shown = await page.locator('.marker-header .marker-name').first().textContent({ timeout: 15_000 });
  const id = Number(shown!.slice(1));
  assert.ok(id > 0 && id < HUGE - 20_000, `a section from far up shows (g${id})`);
  await foldAndUnfold(`g${id}`, `line ${id}`);
  await phase(`scrolled up 12 times (${held} lines held), folded g${id}`);

  // The middle, by a permalink; scrolled about there (loading earlier and later parts); folded.
  const middle = HUGE / 2;
  await page.goto('about:blank');
  await page.goto(`${runUrl}?at=${log.indexOf(`line ${middle}\n`)}`);
  await header(`g${middle}`).waitFor({ timeout: 15_000 });
  await foldAndUnfold(`g${middle}`, `line ${middle}`);
  await scrollAndLoad('top');
  await scrollAndLoad('top');
  // (Down at the end of the lines held, the next part loads below: the reader stays where they were, so again, until the end.)
  await waitFor(async () => {
    await scroller().evaluate((el) => (el.scrollTop = el.scrollHeight));
    return (await header('Final group').count()) > 0;
  }, 'the end of the log shown', 20_000, 250);
  await foldAndUnfold('Final group', 'final line');
  await phase(`opened in the middle by a permalink, folded, scrolled up twice and down to the end (${await lineCount()} lines held)`);

  // Back to the end.
  await page.getByRole('button', { name: 'Jump to end' }).click();
  await header('Final group').waitFor({ timeout: 15_000 });
  await foldAndUnfold('Final group', 'final line');
  await phase('jumped to the end, folded there');

  console.log(`  ${HUGE} sections (${(log.length / 1e6).toFixed(1)} MB of log):\n    ${figures.join('\n    ')}`);

  const longest = Math.max(...phases.map((s) => s.longest));
  assert.ok(longest < MAX_STALL_MS, `the longest task took ${Math.round(longest)} ms (at most ${MAX_STALL_MS})`);
  assert.ok(Math.max(...heaps) < MAX_HEAP_MB, `heap up to ${Math.max(...heaps).toFixed(1)} MB (at most ${MAX_HEAP_MB})`);
  assert.equal(takeCspViolations(), []);
});

test.run();
