import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LineSplitter, type LineBatch } from '../../server/logs/lineSplitter.js';
import { joinPieces } from '../helpers/lines.js';
import { random } from '../helpers/random.js';


const ALPHABET = ['a', 'b', ' ', 'é', '日', '本', '😀', '\r', '\n', '\r\n', '\n', '\x1b[31m', 'ß'];

function randomText(next: () => number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return text;
}

function split(bytes: Buffer, max: number, cuts: number[], final: boolean) {
  const splitter = new LineSplitter(max, 0);
  const batches: LineBatch[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    batches.push(splitter.push(bytes.subarray(start, cut)));
    start = cut;
  }
  if (final) batches.push(splitter.flush(false));
  const lines: string[] = [];
  const continued: number[] = [];
  let expectedOffset = 0;
  for (const batch of batches) {
    assert.is(batch.offset, expectedOffset, 'batches are contiguous');
    for (const index of batch.continued) continued.push(lines.length + index);
    lines.push(...batch.lines);
    expectedOffset = batch.next;
  }
  return { lines, continued, next: expectedOffset };
}


test('lines are the same whatever the write boundaries, including inside characters and \\r\\n', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const text = randomText(next, 1 + Math.floor(next() * 200));
    const bytes = Buffer.from(text);
    const max = [8, 13, 1024][seed % 3];
    const cuts = Array.from({ length: Math.floor(next() * 12) }, () => Math.floor(next() * bytes.length)).sort((a, b) => a - b);
    const whole = split(bytes, max, [], true);
    const chunked = split(bytes, max, cuts, true);
    assert.equal(chunked, whole, `seed ${seed}`);
    assert.is(chunked.next, bytes.length, `seed ${seed}: every byte is delivered`);
    // A line that ends in \n loses a \r before it; an unterminated last line keeps its \r.
    const parts = text.split('\n');
    const expected = parts.map((line, index) => (index < parts.length - 1 ? line.replace(/\r$/, '') : line));
    if (text.endsWith('\n')) expected.pop();
    assert.equal(joinPieces(chunked.lines, chunked.continued), expected, `seed ${seed}`);
    for (const line of chunked.lines) {
      assert.ok(Buffer.byteLength(line) <= max, `seed ${seed}: piece within the maximum`);
      assert.not.ok(line.includes('\ufffd'), `seed ${seed}: no replacement character from valid input`);
    }
  }
});

test('a partial last line waits until its newline, or until flush at the end', () => {
  const splitter = new LineSplitter(1024, 100);
  assert.equal(splitter.push(Buffer.from('ab')), { offset: 100, next: 100, lines: [], continued: [] });
  assert.equal(splitter.push(Buffer.from('c\nd')), { offset: 100, next: 104, lines: ['abc'], continued: [] });
  assert.equal(splitter.flush(false), { offset: 104, next: 105, lines: ['d'], continued: [] });
});

test('a character split across two writes is decoded whole', () => {
  const bytes = Buffer.from('日本\n');
  const splitter = new LineSplitter(1024, 0);
  assert.equal(splitter.push(bytes.subarray(0, 2)).lines, []);
  assert.equal(splitter.push(bytes.subarray(2, 4)).lines, []);
  assert.equal(splitter.push(bytes.subarray(4)).lines, ['日本']);
});

test('invalid bytes become U+FFFD, and only they', () => {
  const splitter = new LineSplitter(1024, 0);
  assert.equal(splitter.push(Buffer.from([0x61, 0xff, 0x62, 0x0a])).lines, ['a\ufffdb']);
});

test('a long line is cut in pieces of at most the maximum, never inside a character', () => {
  const splitter = new LineSplitter(10, 0);
  const batch = splitter.push(Buffer.from(`${'é'.repeat(12)}\n`));
  assert.equal(batch.lines, ['ééééé', 'ééééé', 'éé']);
  assert.equal(batch.continued, [0, 1]);
  assert.is(batch.next, 25);
});

test.run();
