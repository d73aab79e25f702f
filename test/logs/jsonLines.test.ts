import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeJsonLines } from '../../server/logs/jsonLines.js';
import { LineSplitter, type LineBatch } from '../../server/logs/lineSplitter.js';
import { linesFrame } from '../../server/hub/messages.js';
import { random } from '../helpers/random.js';

const encode = (text: string, shift = 0) => {
  // `shift` places the bytes at an unaligned offset, as a subarray of a read buffer is.
  const backing = Buffer.alloc(text.length + shift + 8, 0x2a);
  backing.write(text, shift, 'latin1');
  const result = encodeJsonLines(backing.subarray(shift, shift + Buffer.byteLength(text, 'latin1')));
  return result && { json: result.json.toString(), count: result.count };
};

test('plain ASCII lines are encoded as JSON.stringify would, at any alignment', () => {
  const cases = ['', 'a', 'ab\ncd', '\n', '\n\n', 'x'.repeat(37), 'line one\nline two  \n\ntabless ~!@#$%^&*()_+{}|:<>?[];,./\x7f', 'abc\ndef\nghi\njkl\nmnop'];
  for (const text of cases) {
    for (let shift = 0; shift < 4; shift++) {
      const lines = text.split('\n');
      assert.equal(encode(text, shift), { json: lines.map((line) => JSON.stringify(line)).join(','), count: lines.length }, `${JSON.stringify(text)} at +${shift}`);
    }
  }
});

test('a byte that needs escaping or is not ASCII sends the region to the general path', () => {
  for (const bad of ['"', '\\', '\r', '\t', '\x00', '\x1b', '\x1f', 'é']) {
    for (const at of [0, 1, 2, 3, 4, 5, 6, 7, 20]) {
      const text = `${'a'.repeat(at)}${bad}${'b'.repeat(9)}\nok`;
      for (let shift = 0; shift < 4; shift++) {
        const backing = Buffer.alloc(64);
        const bytes = Buffer.from(text);
        bytes.copy(backing, shift);
        assert.is(encodeJsonLines(backing.subarray(shift, shift + bytes.length)), null, `${JSON.stringify(bad)} at ${at}, +${shift}`);
      }
    }
  }
});


// Mostly plain ASCII, so whole regions take the fast path, with now and then a byte that does not.
const ALPHABET = ['a', 'b', 'c', ' ', '0', '\n', '\n', 'xyz', 'é', '日', '"', '\\', '\r\n', '\t'];

function frames(bytes: Buffer, cuts: number[], max: number, output: 'strings' | 'json'): Buffer[] {
  const splitter = new LineSplitter(max, 0);
  const batches: LineBatch[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    batches.push(splitter.push(bytes.subarray(start, cut), output));
    start = cut;
  }
  batches.push(splitter.flush(false, output));
  return batches.map((batch) => linesFrame(7, batch));
}

test('frames from JSON-encoded bytes are byte for byte those of the string path', () => {
  let fastRegions = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    let text = '';
    const plain = next() < 0.5; // half the inputs pure plain ASCII
    for (let i = 0, n = 1 + Math.floor(next() * 300); i < n; i++) text += ALPHABET[Math.floor(next() * (plain ? 7 : ALPHABET.length))];
    const bytes = Buffer.from(text);
    const cuts = Array.from({ length: Math.floor(next() * 8) }, () => Math.floor(next() * bytes.length)).sort((a, b) => a - b);
    const max = [16, 1024][seed % 2];
    const json = frames(bytes, cuts, max, 'json');
    assert.equal(json.map(String), frames(bytes, cuts, max, 'strings').map(String), `seed ${seed}`);
    if (plain && json.some((frame) => frame.includes('","'))) fastRegions++;
  }
  assert.ok(fastRegions > 50, `the fast path was exercised (${fastRegions} inputs)`);
});

test.run();
