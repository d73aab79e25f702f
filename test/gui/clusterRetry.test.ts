import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { createProject, nodeStep, waitForRun } from '../helpers/hub.js';
import { failTestsOnRejection } from '../helpers/rejections.js';
import { TestClient } from '../helpers/wsClient.js';

failTestsOnRejection(test);

const LINES = 400;
const PIPELINES = {
  paced: { steps: [{ name: 'paced', command: nodeStep(`let i = 0; const t = setInterval(() => { console.log('paced ' + (++i)); if (i === ${LINES}) clearInterval(t); }, 20);`) }], scopes: { all: 'paced' } },
};

let cluster: Cluster;
let browser: Browser;

test.before(async () => {
  cluster = await startCluster({ pipelines: PIPELINES, hubs: 1, workers: 1 });
  browser = await launchBrowser();
});
test.after(async () => {
  await browser?.close();
  await cluster?.stop();
});

test('cluster mode: a page opened while Redis does not answer is refused (log_store_unavailable), asks again with backoff, and once Redis is back shows the whole log once, then its end', async () => {
  const [hub] = cluster.hubs;
  const projectId = await createProject(hub, 'paced');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const client = await TestClient.connect(hub.url);
  client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
  await client.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.includes('paced 20'), 'the run to be under way', 20_000);
  await client.close();

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const refusals: string[] = [];
  let subscribes = 0;
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => {
      if (String(payload).includes('"subscribe"')) subscribes++;
    });
    socket.on('framereceived', ({ payload }) => {
      const message = JSON.parse(String(payload)) as { type: string; code?: string };
      if (message.type === 'error') refusals.push(message.code ?? '');
    });
  });
  cluster.redis.signal('SIGSTOP');
  try {
    await page.goto(`${hub.url}/#/projects/${projectId}/runs/${run.id}`);
    const deadline = Date.now() + 30_000;
    while (refusals.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(refusals.length >= 2, `the page was refused and asked again (refusals: ${refusals.join(', ')})`);
    assert.ok(refusals.every((code) => code === 'log_store_unavailable'), `refused for the store: ${refusals.join(', ')}`);
  } finally {
    cluster.redis.signal('SIGCONT');
  }
  await waitForRun(hub, projectId, run.id, ['completed'], 60_000);
  await page.getByTestId('log-complete').waitFor({ timeout: 60_000 });
  const lineCount = Number((await page.getByTestId('line-count').textContent())!.replace(/[^\d]/g, ''));
  assert.is(lineCount, 1 + LINES + 1, 'header, every line, end marker: nothing twice, nothing missing');
  await page.locator('.log-line', { hasText: `paced ${LINES}` }).first().waitFor({ timeout: 5000 });
  console.log(`  (${refusals.length} refusals, ${subscribes} subscribes sent while Redis was frozen and after)`);
  await page.close();
});

test.run();
