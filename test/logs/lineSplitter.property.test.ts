import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LineSplitter, type LineBatch, type SplitOutput } from '../../server/logs/lineSplitter.js';
import { joinPieces } from '../helpers/lines.js';

/** Fixed seed, so a failure replays: FC_SEED=<seed printed by fast-check> reruns the same cases. */
const SEED = process.env.FC_SEED === undefined ? 0x5eed : Number(process.env.FC_SEED);
if (!Number.isSafeInteger(SEED)) throw new Error(`FC_SEED must be an integer, got ${process.env.FC_SEED}`);
/** Bounded runs; the failing assertion goes into the report, which uvu prints (it does not print an error's cause). */
const runs = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });

const NEWLINE = 0x0a;
const CR = 0x0d;

// ---- Inputs ----------------------------------------------------------------------------------

/** The existing test's alphabet, plus characters the JSON fast path must escape. */
const ALPHABET = ['a', 'b', ' ', 'é', '日', '本', '😀', '\r', '\n', '\r\n', '\x1b[31m', 'ß', '"', '\\', '\t', '\x7f'];
const text = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 120 }).map((parts) => parts.join(''));
/** Long runs of one character, so lines go over the maximum with 1- to 4-byte characters at the cut. */
const run = fc.tuple(fc.constantFrom('a', 'é', '日', '😀', '\r', 'a\r'), fc.integer({ min: 1, max: 80 })).map(([char, count]) => char.repeat(count));
/** Plain ASCII (the JSON fast path's case), with the control characters and quotes it must not pass through. */
const ASCII = ['a', 'b', 'c', ' ', '\n', '\n', '\r\n', '\r', '\t', '\x1b', '\x00', '"', '\\', '\x7f'];
const asciiText = fc.array(fc.oneof({ arbitrary: fc.constantFrom('a', 'bc', 'def', ' '), weight: 6 }, { arbitrary: fc.constantFrom(...ASCII), weight: 1 }), { maxLength: 120 }).map((parts) => parts.join(''));
const utf8Segment = fc.oneof(
  text,
  asciiText,
  run,
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('\n', '\r\n', '\r', '\n\n', '😀\n', '日本\r\n'),
);
const byteSegment = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
  /** Bytes that matter: newline, CR, continuation bytes, lead bytes, bytes never valid in UTF-8. */
  fc.array(fc.constantFrom(NEWLINE, CR, 0x80, 0xbf, 0xc3, 0xe6, 0xf0, 0x9f, 0xff, 0xc0, 0x61), { maxLength: 24 }).map((bytes) => Buffer.from(bytes)),
);
/** Valid UTF-8 only (the text-level expectation applies), or any mix of text and arbitrary bytes. */
const utf8Content = fc.array(utf8Segment, { maxLength: 8 }).map((parts) => Buffer.from(parts.join('')));
const anyContent = fc.array(fc.oneof(utf8Segment.map((part) => Buffer.from(part)), byteSegment), { maxLength: 8 }).map((parts) => Buffer.concat(parts));
const content = fc.oneof(utf8Content, anyContent);
const asciiContent = fc.array(asciiText, { minLength: 1, maxLength: 4 }).map((parts) => Buffer.from(parts.join('')));

/** A small maximum (the configured minimum is 16) or a large one (the default is 1 MiB). */
const maxLineBytes = fc.oneof({ arbitrary: fc.integer({ min: 16, max: 64 }), weight: 3 }, { arbitrary: fc.constantFrom(1024, 1024 * 1024), weight: 1 });
const startOffset = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 40 }));
/** Cut positions, reduced modulo the length: any byte position, repeated ones give empty chunks. */
const cutSeeds = fc.array(fc.nat({ max: 1 << 20 }), { maxLength: 16 });
const cutsOf = (bytes: Buffer, seeds: number[]) => seeds.map((seed) => seed % (bytes.length + 1)).sort((a, b) => a - b);
const OUTPUTS: SplitOutput[] = ['strings', 'json', 'none'];

// ---- Running the splitter ----------------------------------------------------------------------

interface Split {
  batches: LineBatch[];
  lines: string[];
  continued: number[];
  next: number;
}

/**
 * Pushes `bytes` cut at `cuts`, then flushes. Like readLines, each chunk is copied into one read
 * buffer that is overwritten after every push, so a splitter that keeps a reference instead of a
 * copy shows. Checks after each push that offsets are contiguous and at most maxLineBytes wait.
 */
function split(bytes: Buffer, max: number, start: number, cuts: number[], outputs: SplitOutput[] = ['strings'], withEnds = false): Split {
  const splitter = new LineSplitter(max, start);
  const scratch = Buffer.alloc(bytes.length + 8);
  const batches: LineBatch[] = [];
  let from = 0;
  let expectedOffset = start;
  const check = (batch: LineBatch, fed: number) => {
    assert.is(batch.offset, expectedOffset, `batch ${batches.length} starts where the previous one ended`);
    assert.ok(batch.next >= batch.offset && batch.next <= start + fed, `batch ${batches.length} ends within what was fed`);
    assert.is(splitter.committed, batch.next, 'committed is the end of the last batch');
    assert.ok(start + fed - splitter.committed <= max, `at most maxLineBytes (${max}) bytes wait for a newline`);
    assert.is(splitter.hasPending, start + fed > splitter.committed, 'hasPending says whether bytes wait');
    expectedOffset = batch.next;
    batches.push(batch);
  };
  for (const [index, cut] of [...cuts, bytes.length].entries()) {
    // A chunk at a varying alignment inside the reused read buffer (the JSON fast path reads words).
    const at = (index * 3) % 8;
    bytes.copy(scratch, at, from, cut);
    check(splitter.push(scratch.subarray(at, at + cut - from), outputs[index % outputs.length], withEnds), cut);
    scratch.fill(NEWLINE);
    from = cut;
  }
  check(splitter.flush(false, outputs[(cuts.length + 1) % outputs.length], withEnds), bytes.length);
  assert.is(splitter.committed, start + bytes.length, 'after flush every byte is delivered');
  assert.not.ok(splitter.hasPending, 'nothing waits after flush');
  const lines: string[] = [];
  const continued: number[] = [];
  for (const batch of batches) {
    for (const index of batch.continued) continued.push(lines.length + index);
    lines.push(...batch.lines);
  }
  return { batches, lines, continued, next: expectedOffset };
}


/** The existing test's expectation: a line that ends in \n loses a \r before it; an unterminated last line keeps its \r. */
function expectedLines(text: string): string[] {
  if (text === '') return [];
  const parts = text.split('\n');
  const expected = parts.map((line, index) => (index < parts.length - 1 ? line.replace(/\r$/, '') : line));
  if (text.endsWith('\n')) expected.pop();
  return expected;
}

const isContinuation = (byte: number | undefined) => byte !== undefined && (byte & 0xc0) === 0x80;

/**
 * An independent reference over the whole buffer, from the documented rules: lines end at \n, a \r
 * before the \n goes; a line over the maximum is cut at maxLineBytes, moved back at most 3 bytes so
 * the cut is not inside a UTF-8 character (left at the maximum when that cannot help), never to 0.
 */
function reference(bytes: Buffer, max: number): { lines: string[]; continued: number[]; pieceBytes: number[]; ends: number[] } {
  const lines: string[] = [];
  const continued: number[] = [];
  const pieceBytes: number[] = [];
  /** where each line or piece ends: after its newline, or at its cut */
  const ends: number[] = [];
  let start = 0;
  while (start < bytes.length) {
    const newline = bytes.indexOf(NEWLINE, start);
    let rest = bytes.subarray(start, newline === -1 ? bytes.length : newline);
    while (rest.length > max) {
      let cut = max;
      while (cut > max - 3 && cut > 1 && isContinuation(rest[cut])) cut--;
      if (isContinuation(rest[cut])) cut = max;
      continued.push(lines.length);
      lines.push(rest.subarray(0, cut).toString('utf8'));
      pieceBytes.push(cut);
      ends.push((ends.at(-1) ?? 0) + cut);
      rest = rest.subarray(cut);
    }
    if (newline !== -1 && rest.at(-1) === CR) rest = rest.subarray(0, -1);
    lines.push(rest.toString('utf8'));
    pieceBytes.push(rest.length);
    start = newline === -1 ? bytes.length : newline + 1;
    ends.push(start);
  }
  return { lines, continued, pieceBytes, ends };
}

// ---- Properties ----------------------------------------------------------------------------------

test('lines, pieces and offsets are the same whatever the write boundaries as when the whole buffer is split at once', () => {
  fc.assert(
    fc.property(content, maxLineBytes, startOffset, cutSeeds, (bytes, max, start, seeds) => {
      const whole = split(bytes, max, start, []);
      const chunked = split(bytes, max, start, cutsOf(bytes, seeds));
      assert.equal(chunked.lines, whole.lines);
      assert.equal(chunked.continued, whole.continued);
      assert.is(chunked.next, start + bytes.length);
      assert.is(whole.next, start + bytes.length);
    }),
    runs(3000),
  );
});

test('the delivered pieces are the reference split of the whole buffer, each at most maxLineBytes bytes', () => {
  fc.assert(
    fc.property(content, maxLineBytes, startOffset, cutSeeds, (bytes, max, start, seeds) => {
      const chunked = split(bytes, max, start, cutsOf(bytes, seeds));
      const expected = reference(bytes, max);
      assert.ok(expected.pieceBytes.every((size) => size <= max), 'reference pieces are within the maximum');
      assert.equal(chunked.lines, expected.lines);
      assert.equal(chunked.continued, expected.continued);
      if (isUtf8(bytes)) {
        // Valid UTF-8: the pieces join back into the text's lines, and no piece splits a character.
        assert.equal(joinPieces(chunked.lines, chunked.continued), expectedLines(bytes.toString('utf8')));
        for (const line of chunked.lines) assert.ok(Buffer.byteLength(line) <= max, `piece of ${Buffer.byteLength(line)} bytes within ${max}`);
        const replacements = (value: string) => value.split('\ufffd').length - 1;
        assert.is(replacements(chunked.lines.join('')), replacements(bytes.toString('utf8')), 'no replacement character but those in the text');
        // Every byte is accounted for: piece bytes, plus one per \n, plus one per \r dropped before a \n.
        const dropped = (bytes.toString('latin1').match(/\r\n/g) ?? []).length;
        const newlines = (bytes.toString('latin1').match(/\n/g) ?? []).length;
        assert.is(chunked.lines.reduce((sum, line) => sum + Buffer.byteLength(line), 0) + newlines + dropped, bytes.length);
      }
    }),
    runs(3000),
  );
});

test('whatever output each push asks for, offsets are the same, json parts hold the same lines and none holds none', () => {
  fc.assert(
    fc.property(fc.oneof(content, asciiContent), maxLineBytes, startOffset, cutSeeds, fc.array(fc.constantFrom(...OUTPUTS), { minLength: 1, maxLength: 6 }), (bytes, max, start, seeds, outputs) => {
      const cuts = cutsOf(bytes, seeds);
      const strings = split(bytes, max, start, cuts);
      const mixed = split(bytes, max, start, cuts, outputs);
      assert.is(mixed.batches.length, strings.batches.length);
      mixed.batches.forEach((batch, index) => {
        const same = strings.batches[index];
        const output = outputs[index % outputs.length];
        assert.is(batch.offset, same.offset, `batch ${index} (${output}) offset`);
        assert.is(batch.next, same.next, `batch ${index} (${output}) next`);
        if (output === 'strings') {
          assert.equal(batch, same);
        } else if (output === 'json') {
          assert.equal(batch.lines, []);
          assert.equal(batch.continued, same.continued);
          assert.is(batch.json!.count, same.lines.length);
          assert.equal(JSON.parse(`[${Buffer.concat(batch.json!.parts.flatMap((part, i) => (i === 0 ? [part] : [Buffer.from(','), part]))).toString('utf8')}]`), same.lines);
        } else {
          assert.equal(batch.lines, []);
          assert.equal(batch.continued, []);
          assert.is(batch.json, undefined);
        }
      });
    }),
    runs(2000),
  );
});

test('asked for, the ends of the lines are where the reference split ends each line or piece, whatever the output', () => {
  fc.assert(
    fc.property(fc.oneof(content, asciiContent), maxLineBytes, startOffset, cutSeeds, fc.array(fc.constantFrom<SplitOutput>('strings', 'json'), { minLength: 1, maxLength: 4 }), (bytes, max, start, seeds, outputs) => {
      const chunked = split(bytes, max, start, cutsOf(bytes, seeds), outputs, true);
      const ends: number[] = [];
      for (const batch of chunked.batches) {
        const count = batch.json?.count ?? batch.lines.length;
        assert.is(batch.ends!.length, count, 'one end per line');
        if (count > 0) assert.is(batch.ends!.at(-1), batch.next, 'the last line ends where the batch does');
        ends.push(...batch.ends!);
      }
      assert.equal(ends, reference(bytes, max).ends.map((end) => start + end));
      // Not asked for: no ends.
      assert.ok(split(bytes, max, start, cutsOf(bytes, seeds), outputs).batches.every((batch) => batch.ends === undefined));
    }),
    runs(2000),
  );
});

test.run();
