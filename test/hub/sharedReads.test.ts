import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SharedReads, type ReadFrame } from '../../server/hub/sharedReads.js';

const frame = (next: number, bytes = 10): ReadFrame => ({ next, frame: Buffer.alloc(bytes, 0x61) });

test('reads end on the grid, at least minBytes on', () => {
  const shared = new SharedReads(100, 1000);
  assert.is(shared.endFor(0, 10), 100);
  assert.is(shared.endFor(37, 10), 100);
  assert.is(shared.endFor(95, 10), 200, 'a read holds at least minBytes');
  assert.is(shared.endFor(100, 10), 200);
});

test('subscribers at different offsets fall into step after one read', () => {
  // Reads cut back to the last line boundary before the grid line: boundaries every 30 bytes here.
  const shared = new SharedReads(100, 1000);
  const lastBoundaryBefore = (end: number) => Math.floor(end / 30) * 30;
  const walk = (start: number) => {
    const stops = [];
    for (let at = start; at < 600; at = lastBoundaryBefore(shared.endFor(at, 31))) stops.push(at);
    return stops;
  };
  const a = walk(0);
  const b = walk(60);
  const c = walk(150);
  assert.equal(a.slice(-3), b.slice(-3));
  assert.equal(a.slice(-3), c.slice(-3));
});

test('the same start is read once: later and concurrent callers share the frame', async () => {
  const shared = new SharedReads(100, 1000);
  let reads = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const read = async () => {
    reads++;
    await gate;
    return frame(90);
  };
  const first = shared.get(0, read);
  const second = shared.get(0, read);
  release();
  const [one, two] = await Promise.all([first, second]);
  assert.is(one, two);
  assert.is((await shared.get(0, read))!.next, 90);
  assert.is(reads, 1);
});

test('a read that made no progress or failed is not kept', async () => {
  const shared = new SharedReads(100, 1000);
  assert.is(await shared.get(0, async () => null), null);
  assert.is((await shared.get(0, async () => frame(50)))!.next, 50, 'read again');
  await shared.get(100, async () => Promise.reject(new Error('EIO'))).catch(() => {});
  assert.is((await shared.get(100, async () => frame(150)))!.next, 150, 'read again after an error');
});

test('the oldest frames go beyond the byte limit; clear forgets everything', async () => {
  const shared = new SharedReads(100, 25);
  let reads = 0;
  const read = (next: number) => async () => {
    reads++;
    return frame(next);
  };
  await shared.get(0, read(100));
  await shared.get(100, read(200));
  await shared.get(200, read(300)); // 30 bytes kept > 25: the frame at 0 goes
  await shared.get(100, read(200));
  assert.is(reads, 3);
  await shared.get(0, read(100));
  assert.is(reads, 4);
  shared.clear();
  await shared.get(200, read(300));
  assert.is(reads, 5);
});

test('a read that finishes after clear() is neither kept nor drops the entry that replaced it', async () => {
  const shared = new SharedReads(100, 1000);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const old = shared.get(0, async () => {
    await gate;
    return null;
  });
  shared.clear();
  let reads = 0;
  const fresh = async () => {
    reads++;
    return frame(70);
  };
  await shared.get(0, fresh);
  release();
  await old;
  await shared.get(0, fresh);
  assert.is(reads, 1, 'the newer frame is still shared');
});

test.run();
