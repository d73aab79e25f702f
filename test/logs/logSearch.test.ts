import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { searchLog, type SearchQuery } from '../../server/logs/logSearch.js';
import { LocalLogSource } from '../../server/logs/logSource.js';

const query = (text: string, more: Partial<SearchQuery> = {}): SearchQuery => ({ text, regex: false, caseSensitive: false, after: 0, limit: 100, budgetMs: 30_000, regexDeadlineMs: 5000, ...more });

test('offsets are exact byte offsets of line starts across chunks, with \\r\\n and multi-byte characters', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-search-')), 'run.log');
  const lines = Array.from({ length: 150_000 }, (_, i) => (i % 7 === 0 ? `crlf ${i} é日😀\r\n` : `line ${i} ünïcode\n`));
  fs.writeFileSync(file, lines.join(''));
  const bytes = fs.readFileSync(file);
  assert.ok(bytes.length > 2 * 1024 * 1024, 'more than two 1 MiB chunks');
  const result = await searchLog(new LocalLogSource(file), query('😀', { limit: 1000 }), true);
  assert.is(result.matches.length, 1000);
  for (const match of result.matches.slice(0, 5).concat(result.matches.slice(-5))) {
    const end = bytes.indexOf(0x0a, match.offset);
    assert.is(bytes.subarray(match.offset, end).toString().replace(/\r$/, ''), match.line, `line at ${match.offset}`);
  }
  const rest = await searchLog(new LocalLogSource(file), query('😀', { limit: 1000, after: result.next_after }), true);
  assert.is(rest.matches[0].line, `crlf ${7 * 1000} é日😀`, 'next_after goes on at the next line');
});

test('a regex search over many chunks leaves no listener behind per chunk (no MaxListenersExceededWarning)', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-search-')), 'run.log');
  fs.writeFileSync(file, `${'x'.repeat(99)}\n`.repeat(300_000)); // 30 MB: 29 chunks
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.name);
  process.on('warning', onWarning);
  try {
    const result = await searchLog(new LocalLogSource(file), query('^y', { regex: true }), true);
    assert.is(result.complete, true);
    assert.equal(result.matches, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});

test.run();
