import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WorkQueue } from '../../server/backends/workQueue.js';

test('a work queue runs at most its concurrency at once, in order, and idle() waits for every task queued so far, failed ones too', async () => {
  const queue = new WorkQueue(3);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const gates: (() => void)[] = [];
  const tasks = Array.from({ length: 10 }, (_, i) => queue.run(async () => {
    started.push(i);
    running++;
    most = Math.max(most, running);
    await new Promise<void>((resolve) => gates.push(resolve));
    running--;
    if (i === 4) throw new Error('task 4 fails');
    return i;
  }));
  const settled = Promise.allSettled(tasks); // task 4's failure is handled from the start
  let idle = false;
  const idled = queue.idle().then(() => (idle = true));
  while (started.length < 10) {
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(running <= 3, `${running} at once`);
    gates.shift()?.();
  }
  for (const gate of gates.splice(0)) gate();
  const results = await settled;
  await idled;
  assert.ok(idle);
  assert.is(most, 3);
  assert.equal(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'in order');
  assert.is(results.filter((result) => result.status === 'rejected').length, 1);
  assert.is(queue.size, 0);
  await queue.idle(); // nothing queued: at once
});

test.run();
