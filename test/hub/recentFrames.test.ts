import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RecentFrames } from '../../server/hub/recentFrames.js';

const frame = (bytes: number) => Buffer.alloc(bytes, 0x61);
const offsets = (frames: { offset: number }[] | null) => frames?.map((f) => f.offset) ?? null;

test('frames are found only by the offset one of them starts at, and run to the newest', () => {
  const recent = new RecentFrames(1000, 60_000);
  recent.add(0, 10, frame(10));
  recent.add(10, 25, frame(15));
  recent.add(25, 40, frame(15));
  assert.equal(offsets(recent.from(0)), [0, 10, 25]);
  assert.equal(offsets(recent.from(10)), [10, 25]);
  assert.equal(offsets(recent.from(25)), [25]);
  assert.is(recent.from(5), null, 'inside a frame: not a boundary it can resume from');
  assert.is(recent.from(40), null, 'the live edge itself is not a frame');
});

test('a frame that does not follow the last one starts over (no gaps)', () => {
  const recent = new RecentFrames(1000, 60_000);
  recent.add(0, 10, frame(10));
  recent.add(50, 60, frame(10));
  assert.is(recent.from(0), null);
  assert.equal(offsets(recent.from(50)), [50]);
});

test('the oldest frames go beyond the byte limit, but never the newest', () => {
  const recent = new RecentFrames(25, 60_000);
  recent.add(0, 10, frame(10));
  recent.add(10, 20, frame(10));
  recent.add(20, 30, frame(10));
  assert.is(recent.from(0), null);
  assert.equal(offsets(recent.from(10)), [10, 20]);
  recent.add(30, 130, frame(100));
  assert.equal(offsets(recent.from(30)), [30], 'a frame over the limit alone is kept');
  assert.is(recent.from(20), null);
});

test('frames older than the age limit go', async () => {
  const recent = new RecentFrames(1000, 20);
  recent.add(0, 10, frame(10));
  await new Promise((resolve) => setTimeout(resolve, 40));
  recent.add(10, 20, frame(10));
  assert.is(recent.from(0), null);
  assert.equal(offsets(recent.from(10)), [10]);
});

test('clear forgets everything', () => {
  const recent = new RecentFrames(1000, 60_000);
  recent.add(0, 10, frame(10));
  recent.clear();
  assert.is(recent.from(0), null);
});

test.run();
