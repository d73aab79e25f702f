import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readSectionHeader } from '../../server/sections/sectionFile.js';
import type { Section } from '../../server/wire.js';
import { fileGate } from '../helpers/fileGate.js';
import { createProject, logFileOf, sh, startHub, waitFor, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const during = fileGate();
const last = fileGate();

test.after(() => {
  during.remove();
  last.remove();
});

test('a hub restarted under a running run indexes its sections at start: no change of the run and no request needed', async () => {
  const pipelines = {
    marked: {
      // One group before the kill; one written while no hub runs; then the run waits (no change of it until the gate).
      steps: [{ name: 'build', command: sh(`echo '::group::Before'; echo a; echo '::endgroup::'; ${during.waitCommand}; echo '::group::While down'; echo b; echo '::endgroup::'; ${last.waitCommand}`) }],
      scopes: { all: 'build' },
    },
  };
  const first = await startHub({ pipelines });
  const projectId = await createProject(first, 'marked');
  const { body: run } = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const log = logFileOf(first, projectId, run.id);
  await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('::endgroup::'), 'the first group to close');
  // The first hub has recorded the runner's state as it stays: the restarted hub sees no change of the run.
  const stateFile = log.replace(/\.log$/, '.json');
  await waitFor(async () => {
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    const { body: recorded } = await first.api('GET', `/api/projects/${projectId}/runs/${run.id}`);
    return recorded.current_step === state.current_step && JSON.stringify(recorded.steps) === JSON.stringify(state.steps);
  }, 'the runner\'s state to be recorded');
  await first.stop('SIGKILL');
  during.open();
  await waitFor(() => fs.readFileSync(log, 'utf8').split('::endgroup::').length === 3, 'the second group, written with no hub');
  const size = fs.statSync(log).size;
  const files = { records: log.replace(/\.log$/, '.sections'), names: log.replace(/\.log$/, '.section-names') };
  const second = await startHub({ pipelines, dir: first.dir });
  try {
    // Read from the files, not asked for over HTTP (a request would itself start the indexing).
    await waitFor(async () => ((await readSectionHeader(files))?.indexed ?? 0) >= size, 'the restarted hub to index the log to its end', 15_000);
    const client = await TestClient.connect(second.url);
    try {
      client.send({ type: 'subscribe', run_id: run.id, offset: 0, sections: true });
      await client.waitFor((message) => message.type === 'subscribed', 'subscribed');
      const { body: page } = await second.api('GET', `/api/projects/${projectId}/runs/${run.id}/sections`);
      assert.equal((page.sections as Section[]).map((section) => [section.name, section.end !== null]), [['Before', true], ['While down', true]]);
      assert.is(page.complete, false);
      last.open();
      await client.complete(run.id);
      assert.is((await waitForRun(second, projectId, run.id, ['completed', 'failed'])).status, 'completed');
    } finally {
      await client.close();
    }
  } finally {
    await second.stop();
  }
});

test.run();
