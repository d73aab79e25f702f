import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHub, waitFor } from '../helpers/hub.js';

test('embedded: /api/ready checks the database and the logs folder; the logs folder gone: 503 naming logs, /api/health still 200; back: ready', async () => {
  const hub = await startHub();
  const logs = path.join(hub.dir, 'logs');
  try {
    const ready = await hub.api('GET', '/api/ready');
    assert.is(ready.status, 200);
    assert.is(ready.body.ok, true);
    assert.equal(Object.keys(ready.body.checks).sort(), ['database', 'logs', 'serving']);
    fs.renameSync(logs, `${logs}.away`);
    const notReady = await hub.api('GET', '/api/ready');
    assert.is(notReady.status, 503);
    assert.equal([notReady.body.checks.logs.ok, notReady.body.checks.database.ok], [false, true]);
    assert.match(notReady.body.checks.logs.error, 'ENOENT');
    assert.is((await hub.api('GET', '/api/health')).status, 200);
    fs.renameSync(`${logs}.away`, logs);
    await waitFor(async () => (await hub.api('GET', '/api/ready')).status === 200, 'ready again');
  } finally {
    await hub.stop();
    fs.rmSync(hub.dir, { recursive: true, force: true });
  }
});

test.run();
