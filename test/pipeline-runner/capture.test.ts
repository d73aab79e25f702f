import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLUSH_MS, StepCapture } from '../../pipeline-runner/capture.js';
import { Masker } from '../../pipeline-runner/masker.js';
import { waitFor } from '../helpers/hub.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

const SECRET = 'sk-live-0123456789';

/** A capture into a fresh log file, the command started on its pipe; resolves once its output is all written. */
async function capture(command: string[], masker = new Masker([SECRET])) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-capture-test-')), 'run.log');
  const fd = fs.openSync(file, 'a');
  const errors: Error[] = [];
  const step = new StepCapture(fd, masker, (error) => errors.push(error));
  const child = spawn(command[0], command.slice(1), { stdio: ['ignore', step.writeFd, step.writeFd] });
  step.closeWriteEnd();
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(() => step.finish(500)).finally(() => fs.closeSync(fd));
  return { file, done, errors, read: () => fs.readFileSync(file, 'utf8') };
}

test('the start of what may be a secret is held back only until output pauses for 25 ms, then written', async () => {
  // It prints the time, then the first bytes of the secret, then waits 2 s before ending.
  const run = await capture([process.execPath, '-e', `process.stdout.write('at ' + Date.now() + ' ${SECRET.slice(0, 6)}'); setTimeout(() => {}, 2000)`]);
  const seen = await waitFor(() => (run.read().endsWith(SECRET.slice(0, 6)) ? Date.now() : 0), 'the held bytes in the log', 1900, 2);
  const delay = seen - Number(/at (\d+)/.exec(run.read())![1]);
  console.log(`  held-back bytes written ${delay} ms after the step wrote them (flush after ${FLUSH_MS} ms of quiet)`);
  assert.ok(delay < 1000, `written by the flush timer, not at the step's end (${delay} ms)`);
  await run.done;
  assert.is(run.read(), `${run.read().split(' ').slice(0, 2).join(' ')} ${SECRET.slice(0, 6)}`);
});

test('stdout and stderr share one pipe: their order is kept, and a secret on either is masked', async () => {
  const run = await capture([process.execPath, '-e', `for (let i = 0; i < 200; i++) require('node:fs').writeSync(i % 2 ? 2 : 1, (i % 2 ? 'err ' : 'out ') + i + ' ${SECRET}\\n')`]);
  await run.done;
  assert.equal(run.read().split('\n').slice(0, -1), Array.from({ length: 200 }, (_, i) => `${i % 2 ? 'err' : 'out'} ${i} [MASKED]`));
  assert.equal(run.errors, []);
});

test('an ::add-mask:: line waits for its newline, however long, so its value is never written half masked', async () => {
  const run = await capture([process.execPath, '-e', `process.stdout.write('::add-mask::runtime-'); setTimeout(() => console.log('value-77\\nuse runtime-value-77'), 200)`]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.is(run.read(), '', 'nothing of the command line yet');
  await run.done;
  assert.is(run.read(), '::add-mask::[MASKED]\nuse [MASKED]\n');
});

test.run();
