import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTimeRecord, LogClock, TIME_RECORD_BYTES } from '../../pipeline-runner/logClock.js';
import { LineTimes, TimeSpan } from '../../server/logs/lineTimes.js';
import { openIfExists } from '../../server/logs/logSource.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'line-times-'));
const timesOf = (file: string) => new LineTimes(() => openIfExists(file));

/** A times file whose record i says: the log was (i + 1) * 100 bytes at 1000 + i ms. */
function recordsFile(name: string, count: number): string {
  const file = path.join(dir, name);
  let text = '';
  for (let i = 0; i < count; i++) text += formatTimeRecord((i + 1) * 100, 1000 + i);
  fs.writeFileSync(file, text);
  return file;
}

test('records are fixed-width plain text', () => {
  assert.is(formatTimeRecord(12345, 1795800000123), '000000000012345 1795800000123\n');
  assert.is(formatTimeRecord(0, 0).length, TIME_RECORD_BYTES);
});

test('a line gets the time of the first record that covers its end; past the last record, `after`', async () => {
  const times = timesOf(recordsFile('small', 3)); // 100@1000, 200@1001, 300@1002
  assert.equal(await times.timesOf([1, 100, 101, 200, 250, 300, 301, 500], 7777), [1000, 1000, 1001, 1001, 1002, 1002, 7777, 7777]);
  assert.equal(await times.timesOf([301], null), [null], 'a finished run: unknown');
  await times.close();
});

test('many records (several blocks), asked in any order, from fresh readers and one reused', async () => {
  const count = 5000;
  const file = recordsFile('many', count);
  const reused = timesOf(file);
  for (const end of [1, 99_950, 51_200, 51_201, 250_000, 500_000, 499_999, 100, 300_050]) {
    const expected = end > count * 100 ? null : 1000 + Math.ceil(end / 100) - 1;
    const fresh = timesOf(file);
    assert.equal(await fresh.timesOf([end], null), [expected], `fresh reader, end ${end}`);
    await fresh.close();
    assert.equal(await reused.timesOf([end], null), [expected], `reused reader, end ${end}`);
  }
  // A long increasing run of ends across blocks, as a catch-up frame asks.
  const ends = Array.from({ length: 2000 }, (_, i) => 40_000 + i * 150);
  assert.equal(await reused.timesOf(ends, null), ends.map((end) => 1000 + Math.ceil(end / 100) - 1));
  await reused.close();
});

test('a file that grows is read as it grows; no file gives nulls; a damaged record stops the times there', async () => {
  const file = path.join(dir, 'growing');
  const times = timesOf(file);
  assert.equal(await times.timesOf([10, 20], 5), [5, 5], 'no times file (yet): `after` (now for a live run, null for a finished one)');
  fs.writeFileSync(file, formatTimeRecord(10, 1));
  assert.equal(await times.timesOf([10, 20], 5), [5, 5], 'not looked for again at once');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(await times.timesOf([10, 20], 5), [1, 5]);
  fs.appendFileSync(file, formatTimeRecord(20, 2) + formatTimeRecord(30, 3).slice(0, 10)); // a torn last record is not read
  assert.equal(await times.timesOf([10, 20, 30], 5), [1, 2, 5]);
  await times.close();

  const damaged = path.join(dir, 'damaged');
  fs.writeFileSync(damaged, formatTimeRecord(10, 1) + 'x'.repeat(TIME_RECORD_BYTES) + formatTimeRecord(30, 3));
  const reader = timesOf(damaged);
  assert.equal(await reader.timesOf([5, 20, 30], 9), [1, null, null]);
  await reader.close();
});

test('readers asking at once share one open of the times file (none is left open)', async () => {
  const file = recordsFile('shared', 2000);
  let opened = 0;
  const times = new LineTimes(() => {
    opened++;
    return openIfExists(file);
  });
  const answers = await Promise.all([times.timesOf([100], null), times.timesOf([150_000], null), times.timesOf([199_999, 200_000], null)]);
  assert.equal(answers, [[1000], [2499], [2999, 2999]]);
  assert.is(opened, 1);
  await times.close();
  assert.equal(await times.timesOf([100], 5), [5], 'closed: `after`');
  assert.is(opened, 1, 'a closed reader opens nothing');
});

test('a lookup given a deadline does not wait for a times file that does not answer: its lines get `after`', async () => {
  const hanging = new LineTimes(() => new Promise(() => {}));
  let timer: NodeJS.Timeout | undefined;
  const giveUp = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the lookup waited past its deadline')), 5000)));
  const span = await Promise.race([hanging.span(0, 100, 20), giveUp]).finally(() => clearTimeout(timer));
  assert.equal(span.timesOf([50, 100], 7), [7, 7]);
});

test('a times file with no whole record yet, then one: the first answer is `after`, the next the record', async () => {
  const file = path.join(dir, 'partial');
  fs.writeFileSync(file, formatTimeRecord(10, 1).slice(0, 12));
  const times = timesOf(file);
  assert.equal(await times.timesOf([10], 5), [5]);
  fs.writeFileSync(file, formatTimeRecord(10, 1) + formatTimeRecord(20, 2));
  assert.equal(await times.timesOf([10, 20], 5), [1, 2]);
  assert.equal(await times.timesOf([5], 5), [1], 'and back to the start');
  await times.close();
});

test('a stream\'s times never go back: no time before `notBefore` (unknown stays unknown)', () => {
  const span = new TimeSpan([{ size: 10, time: 5 }, { size: 20, time: 9 }]);
  assert.equal(span.timesOf([10, 20, 30], null, 7), [7, 9, null]);
  assert.equal(span.timesOf([10, 20, 30], 12, 0), [5, 9, 12]);
});

test('the clock records a size only when the log grew, and once more when it stops', async () => {
  const log = path.join(dir, 'clock.log');
  const file = path.join(dir, 'clock.times');
  const fd = fs.openSync(log, 'a+');
  const clock = new LogClock(fd, file);
  clock.start();
  fs.writeSync(fd, 'one\n');
  clock.sample();
  clock.sample();
  fs.writeSync(fd, 'two\n');
  clock.stop();
  fs.closeSync(fd);
  const sizes = fs.readFileSync(file, 'latin1').trimEnd().split('\n').map((record) => Number(record.split(' ')[0]));
  assert.equal(sizes, [0, 4, 8]);
  const reader = timesOf(file);
  const [one, two] = await reader.timesOf([4, 8], null);
  assert.ok(one !== null && two !== null && two >= one && Math.abs(Date.now() - two) < 60_000);
  await reader.close();
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
