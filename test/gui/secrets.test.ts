import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, launchBrowser, takeCspViolations } from '../helpers/browser.js';
import { createProject, nodeStep, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

const SECRET = 'gui-secret-Value.42*';
/** The glossary demo's style: the model call fails and echoes its request headers. */
const PIPELINES = {
  leaky: { steps: [{ name: 'call', command: nodeStep(`console.log('LLM error: ' + JSON.stringify({ headers: { authorization: 'Bearer ' + process.env.LLM_KEY } }))`) }], scopes: { all: 'call' } },
};

let hub: TestHub;
let browser: Browser;

test.before(async () => {
  hub = await startHub({ pipelines: PIPELINES });
  browser = await launchBrowser();
});
test.after(async () => {
  await browser?.close();
  await hub?.stop();
});

/** The whole page as a user could get at it: its text and every input's value. */
const everything = (page: Page) => page.evaluate(() => document.body.innerText + Array.from(document.querySelectorAll('input'), (input) => input.value).join('\n'));

test('the project page lists secret names, sets and deletes them, never shows a value; a step printing one shows [MASKED] in the log', async () => {
  takeCspViolations();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('dialog', (dialog) => dialog.accept().catch((error: unknown) => console.error('accepting a dialog failed:', error)));
  try {
    const projectId = await createProject(hub, 'leaky');
    await page.goto(`${hub.url}/#/projects/${projectId}`);
    const secrets = page.getByRole('region', { name: 'Secrets' });
    await secrets.getByLabel('Secret name').fill('LLM_KEY');
    await secrets.getByLabel('Secret value').fill('short');
    await secrets.getByRole('button', { name: 'Set secret' }).click();
    await secrets.getByRole('alert').filter({ hasText: 'at least 6 bytes' }).waitFor();
    assert.is(await secrets.getByLabel('Secret value').getAttribute('type'), 'password');
    await secrets.getByLabel('Secret value').fill(SECRET);
    await secrets.getByRole('button', { name: 'Set secret' }).click();
    await secrets.locator('tr[data-secret="LLM_KEY"]').waitFor();
    assert.is(await secrets.getByLabel('Secret value').inputValue(), '', 'the value is cleared once set');
    assert.not.ok((await everything(page)).includes(SECRET), 'the page never shows the value');

    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    await waitForRun(hub, projectId, body.id, ['completed']);
    await page.goto(`${hub.url}/#/projects/${projectId}/runs/${body.id}`);
    await page.getByTestId('log-complete').waitFor();
    await page.getByText('"authorization":"Bearer [MASKED]"', { exact: false }).first().waitFor();
    await page.screenshot({ path: `${artifactsDir}secrets-masked-log.png` });
    assert.not.ok((await everything(page)).includes(SECRET), 'the log view never shows the value');

    await page.goto(`${hub.url}/#/projects/${projectId}`);
    await page.getByRole('button', { name: 'Delete secret LLM_KEY' }).click();
    await waitFor(async () => (await hub.api('GET', `/api/projects/${projectId}/secrets`)).body.length === 0, 'the secret to be deleted');
    await page.locator('tr[data-secret="LLM_KEY"]').waitFor({ state: 'detached' });
    const violations = takeCspViolations();
    assert.equal(violations, [], 'no Content-Security-Policy violation');
  } finally {
    await page.close();
  }
});

test.run();
