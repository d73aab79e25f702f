import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../server/config.js';
import { HubError } from '../../server/errors.js';
import { LogHub } from '../../server/hub/logHub.js';
import { LocalLogSource } from '../../server/logs/logSource.js';
import type { ProjectStore } from '../../server/store/projects.js';
import type { RunRow, RunStore } from '../../server/store/runs.js';
import type { Run } from '../../server/wire.js';
import { FakeSink } from '../helpers/fakeSink.js';
import { openHandles, waitFor } from '../helpers/hub.js';

const finishedRun = (file: string) => ({ id: 1, project_id: 1, status: 'completed', exit_code: 0, error_message: null, log_size: fs.statSync(file).size }) as RunRow;

/** A hub over one finished run whose record `get` answers (a store stand-in: only `get` is asked). */
function hubOf(file: string, get: () => Promise<RunRow | undefined>) {
  const config = loadConfig({}, path.dirname(file));
  const runs = { get } as unknown as RunStore;
  return new LogHub(config, runs, {} as ProjectStore, (run) => run as unknown as Run, () => new LocalLogSource(file));
}

function bigLog(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-removed-')), 'run.log');
  fs.writeFileSync(file, `${'a line of a log that is removed while it is read\n'.repeat(100_000)}`);
  return file;
}

const removedFrame = { type: 'run_removed', project_id: 1, run_id: 1, reason: 'purged' };

test('a subscribe still reading its run record when the run is removed fails not_found and holds nothing', async () => {
  const file = bigLog();
  const run = finishedRun(file);
  let answer!: (run: RunRow) => void;
  const hub = hubOf(file, () => new Promise((resolve) => (answer = resolve)));
  const sink = new FakeSink();
  const subscribing = hub.subscribeRun(sink, 1, { offset: 0 }, { onStart: () => sink.send('subscribed', '{}') });
  await waitFor(() => answer, 'the record read');
  fs.rmSync(file);
  hub.runRemoved(1, 1, 'purged');
  answer(run); // read before the record was deleted
  const error = await subscribing.then(() => null, (caught: unknown) => caught);
  assert.instance(error, HubError);
  assert.is((error as HubError).code, 'not_found');
  assert.equal(sink.messages, [], 'not subscribed, sent nothing');
  assert.equal(hub.subscriptionStats(), { run: 0, project: 0, paused: 0 });
  await hub.close();
});

for (const when of ['paused (its socket full)', 'in the middle of a catch-up read'] as const) {
  test(`a subscriber ${when} when its run is removed gets run_removed, nothing after it, and no read of the deleted log fails unhandled`, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const file = bigLog();
      const run = finishedRun(file);
      const hub = hubOf(file, async () => run);
      const sink = new FakeSink();
      if (when === 'paused (its socket full)') {
        // Full after its first frame: it waits for a drain that comes only after the removal.
        const send = sink.send.bind(sink);
        sink.send = (type, frame) => {
          send(type, frame);
          if (type === 'lines') sink.full = true;
        };
      }
      await hub.subscribeRun(sink, 1, { offset: 0 });
      if (when === 'paused (its socket full)') await waitFor(() => sink.full, 'the first frame');
      // As a purge does: the files go, then the hub hears of it (a read may be under way now).
      fs.rmSync(file);
      hub.runRemoved(1, 1, 'purged');
      sink.drain();
      assert.equal(sink.messages.at(-1), { type: 'run_removed', body: removedFrame });
      assert.equal(sink.ended, [1], 'the subscription ended once');
      assert.equal(hub.subscriptionStats().run, 0);
      const count = sink.messages.length;
      // The reader is released; its handle closes once a read in flight has settled.
      await waitFor(() => openHandles(process.pid, `${file} (deleted)`) === 0, 'the deleted log to be closed', 5000);
      assert.is(sink.messages.length, count, 'nothing after run_removed');
      assert.not.ok(sink.messages.some((m) => m.type === 'complete' || m.type === 'error'));
      await hub.close();
      await new Promise((resolve) => setImmediate(resolve)); // rejections are reported after the current turn
      assert.equal(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
}

test('a removed run is announced once to a sink that follows both the run and its project', async () => {
  const file = bigLog();
  const run = finishedRun(file);
  const hub = new LogHub(loadConfig({}, path.dirname(file)), { get: async () => run } as unknown as RunStore, { get: async () => ({ id: 1 }) } as unknown as ProjectStore, (row) => row as unknown as Run, () => new LocalLogSource(file));
  const sink = new FakeSink();
  sink.full = true; // paused before its first frame: still following when the run goes
  await hub.subscribeProject(sink, 1);
  await hub.subscribeRun(sink, 1, { offset: 0 });
  hub.runRemoved(1, 1, 'retention');
  assert.equal(sink.messages.filter((m) => m.type === 'run_removed'), [{ type: 'run_removed', body: { ...removedFrame, reason: 'retention' } }]);
  assert.equal(hub.subscriptionStats(), { run: 0, project: 1, paused: 0 });
  await hub.close();
});

test.run();
