import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { loadPipelines } from '../../server/pipelines/load.js';
import { LocalLauncher } from '../../server/runs/localLauncher.js';
import { RunService } from '../../server/runs/service.js';
import { openSqliteStore } from '../../server/store/sqlite/store.js';
import { waitFor } from '../helpers/hub.js';

test('a runner that cannot be spawned (ENOENT, as EAGAIN or EMFILE would) fails that run with the reason; nothing crashes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-service-'));
  const pipelinesFile = path.join(dir, 'pipelines.json');
  fs.writeFileSync(pipelinesFile, JSON.stringify({ pipelines: { p: { steps: [{ name: 'a', command: ['true'] }], scopes: { all: 'a' } } } }));
  const config = loadConfig({ HUB_DATA_DIR: 'data', HUB_LOGS_DIR: 'logs', HUB_PIPELINES: pipelinesFile }, dir);
  const store = await openSqliteStore(config.dbFile);
  const { projects, runs } = store;
  const log = pino({ level: 'silent' });
  // A real spawn of a program that does not exist: the error arrives as an 'error' event, later.
  const service = new RunService(config, loadPipelines(pipelinesFile), projects, runs, log, (events) => new LocalLauncher(config, events, log, [path.join(dir, 'no-such-node')]));
  try {
    await service.recover();
    const project = await projects.insert({ name: 'p', doc_root: dir, pipeline: 'p', settings: {} });
    const run = await service.start(project, { scope: 'all', triggeredBy: 'test', ifBusy: 'reject' });
    assert.is(run.status, 'failed');
    assert.match(run.error_message!, /The run could not start: spawn .*no-such-node ENOENT/);
    // The pool's own refills fail the same way, in the background, without an unhandled error.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = await service.start(project, { scope: 'all', triggeredBy: 'test', ifBusy: 'reject' });
    assert.is(second.status, 'failed');
    await waitFor(async () => (await runs.listActive()).length === 0, 'no active run');
  } finally {
    await service.close();
    await store.close();
  }
});

test.run();
