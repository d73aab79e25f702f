import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kmpFailure, kmpIndexOf } from '../../server/logs/byteMatcher.js';
import { searchLog, type SearchQuery, type SearchResult } from '../../server/logs/logSearch.js';
import { LocalLogSource } from '../../server/logs/logSource.js';

/** Fixed seed, so a failure replays: FC_SEED=<seed printed by fast-check> reruns the same cases. */
const SEED = process.env.FC_SEED === undefined ? 0x5eed : Number(process.env.FC_SEED);
if (!Number.isSafeInteger(SEED)) throw new Error(`FC_SEED must be an integer, got ${process.env.FC_SEED}`);
const runs = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });

// ---- Logs: text, bytes that are not UTF-8, \r\n, and lines longer than a (small) chunk ----------

const PIECES = ['a', 'b', 'x', 'A', 'B', 'ab', 'aB', ' ', '1', '42', 'é', 'É', '日', '😀', 'ß', '\r\n', '\n', '\n', '\r', 'needle', 'NeEdLe'];
const BAD = [0xff, 0xfe, 0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0x9f, 0xc0, 0xed];
const piece = fc.oneof(
  { arbitrary: fc.constantFrom(...PIECES).map((text) => Buffer.from(text)), weight: 8 },
  { arbitrary: fc.array(fc.constantFrom(...BAD), { minLength: 1, maxLength: 4 }).map((bytes) => Buffer.from(bytes)), weight: 2 },
  // A long run: lines longer than the chunk, characters cut at chunk ends.
  { arbitrary: fc.tuple(fc.constantFrom('a', 'é', '日', '😀', 'ab'), fc.integer({ min: 20, max: 300 })).map(([text, count]) => Buffer.from(text.repeat(count))), weight: 1 },
);
const log = fc.array(piece, { maxLength: 60 }).map((pieces) => Buffer.concat(pieces));

/** Text queries, with and without letters, ASCII or not; regexes whose matches stay within a line and are short. */
const TEXTS = ['a', 'ab', 'AB', 'b', 'needle', 'NEEDLE', 'é', 'É', 'éé', '日', '😀', 'ß', 'a a', '42', 'x', 'aaaa', 'é日', 'a\r'];
const REGEXES = ['ab', 'a+b', 'é.', '\\d\\d', '^x', 'x$', 'b\\r?$', '(?:)', 'z*', '\\bab', '[^a]b', '\\uFFFD', '日|😀', '^$', 'needle', 'é', '^a', 'B$'];
const query = fc.oneof(
  fc.record({ text: fc.constantFrom(...TEXTS), regex: fc.constant(false), caseSensitive: fc.boolean() }),
  fc.record({ text: fc.constantFrom(...REGEXES), regex: fc.constant(true), caseSensitive: fc.boolean() }),
);

// ---- The reference: line by line, each line decoded on its own -------------------------------

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function reference(bytes: Buffer, q: { text: string; regex: boolean; caseSensitive: boolean }): { offset: number; line: string }[] {
  const found: { offset: number; line: string }[] = [];
  const needle = Buffer.from(q.text);
  const pattern = new RegExp(q.regex ? q.text : escapeRegex(q.text), q.caseSensitive ? 'm' : 'mi');
  for (let start = 0; start < bytes.length; ) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline;
    const line = bytes.subarray(start, end);
    const text = new TextDecoder().decode(line);
    // Case-sensitive text: the bytes, compared one by one; otherwise the decoded line.
    const hit = !q.regex && q.caseSensitive ? containsBytes(line, needle) : pattern.test(text);
    if (hit) found.push({ offset: start, line: text.replace(/\r$/, '').slice(0, 2000) });
    start = end + 1;
  }
  return found;
}

function containsBytes(haystack: Buffer, needle: Buffer): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

// ---- The search, paged ---------------------------------------------------------------------------

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-search-property-'));

test('search finds the lines a line-by-line reference finds, at the same byte offsets, paged by any limit without skipping or repeating', () =>
  fc.assert(
    fc.asyncProperty(log, query, fc.integer({ min: 64, max: 200 }), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 6 }), async (bytes, q, chunkBytes, limits) => {
      const file = path.join(dir, 'run.log');
      fs.writeFileSync(file, bytes);
      const expected = reference(bytes, q);
      const got: SearchResult['matches'] = [];
      let after = 0;
      for (let page = 0; page < 10_000; page++) {
        const limit = limits[page % limits.length];
        const base: SearchQuery = { ...q, after, limit, budgetMs: 60_000, regexDeadlineMs: 10_000, chunkBytes };
        const result = await searchLog(new LocalLogSource(file), base, true);
        assert.ok(result.matches.length <= limit);
        got.push(...result.matches);
        assert.ok(result.next_after === 0 || result.next_after === bytes.length || bytes[result.next_after - 1] === 0x0a, `next_after ${result.next_after} is a line start`);
        assert.ok(result.next_after >= after, 'next_after goes forward');
        if (result.complete) break;
        assert.is(result.stopped, 'limit');
        after = result.next_after;
      }
      assert.equal(got, expected);
    }),
    runs(400),
  ));

test('a running run: its last line is searched once it is whole, and paging goes on there', async () => {
  const file = path.join(dir, 'running.log');
  fs.writeFileSync(file, Buffer.concat([Buffer.from('needle one\n'), Buffer.from([0xff]), Buffer.from('needle two, still being writ')]));
  const base: SearchQuery = { text: 'needle', regex: false, caseSensitive: false, after: 0, limit: 10, budgetMs: 10_000, regexDeadlineMs: 5000, chunkBytes: 64 };
  const first = await searchLog(new LocalLogSource(file), base, false);
  assert.equal(first.matches.map((m) => m.offset), [0]);
  assert.is(first.next_after, 11, 'the growing line is left for later');
  fs.appendFileSync(file, 'ten\nlast\n');
  const second = await searchLog(new LocalLogSource(file), { ...base, after: first.next_after }, false);
  assert.equal(second.matches.map((m) => [m.offset, m.line]), [[11, '\ufffdneedle two, still being written']]);
  assert.is(second.complete, true);
});

test('the linear fallback (KMP) finds the first occurrence Buffer.indexOf finds', () =>
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 1, maxLength: 6 }), fc.nat(), (hay, needleBytes, fromSeed) => {
      // A small alphabet, so that needles recur and partly match.
      const haystack = Buffer.from(hay.map((byte) => 0x61 + (byte % 3)));
      const needle = Buffer.from(needleBytes.map((byte) => 0x61 + (byte % 3)));
      const from = fromSeed % (haystack.length + 1);
      const expected = haystack.subarray(from).indexOf(needle);
      assert.is(kmpIndexOf(haystack, from, haystack.length, needle, kmpFailure(needle)), expected === -1 ? -1 : expected + from);
    }),
    runs(2000),
  ));

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
