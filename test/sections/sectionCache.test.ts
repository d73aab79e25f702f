import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalLogSource } from '../../server/logs/logSource.js';
import { SectionCache } from '../../server/sections/sectionCache.js';
import { SectionIndex } from '../../server/sections/sectionIndex.js';
import type { RunRow } from '../../server/store/runs.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'section-cache-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

const logs = path.join(dir, 'logs');
fs.mkdirSync(logs);
const logOf = (runId: number) => path.join(logs, `${runId}.log`);
const finished = (id: number): RunRow => ({ id, project_id: 1, status: 'completed', log_size: fs.statSync(logOf(id)).size }) as RunRow;
const indexed = (cacheDir: string) => fs.readdirSync(cacheDir).filter((name) => name.endsWith('.sections')).map((name) => Number(name.split('.')[0])).sort((a, b) => a - b);

function indexWith(cache: SectionCache): SectionIndex {
  return new SectionIndex({ filesOf: (run) => cache.filesOf(run.id), sourceOf: (run) => new LocalLogSource(logOf(run.id)), changed: () => {}, cache, onDemand: true });
}

test('a bounded cache keeps the index files of the runs used last: an older one\'s are deleted, and it is indexed again when asked for', async () => {
  for (let id = 1; id <= 4; id++) fs.writeFileSync(logOf(id), `::group::run ${id}\nx\n::endgroup::\n`);
  const cacheDir = path.join(dir, 'cache');
  const cache = SectionCache.open(cacheDir, 2);
  const index = indexWith(cache);
  try {
    for (const id of [1, 2, 3]) assert.equal((await index.page(finished(id), 0, 10)).sections.map((section) => section.name), [`run ${id}`]);
    assert.equal(indexed(cacheDir), [2, 3], 'run 1, used least lately, went');
    await index.page(finished(2), 0, 10); // 2 is now the one used last: 3 goes next
    await index.page(finished(4), 0, 10);
    assert.equal(indexed(cacheDir), [2, 4]);
    assert.is(fs.readdirSync(cacheDir).length, 4, 'the names files go with the records');
    const again = await index.page(finished(1), 0, 10);
    assert.equal([again.sections.map((section) => section.name), again.complete], [['run 1'], true], 'an evicted run is indexed again');
    assert.equal(indexed(cacheDir), [1, 4], 'and run 2, now used least lately, went');
    await index.forget(4);
    assert.equal(indexed(cacheDir), [1], 'a removed run\'s files go at once');
  } finally {
    await index.close();
  }
  // A restarted hub finds the files, in the order they were used, and keeps to its limit.
  const smaller = SectionCache.open(cacheDir, 1);
  assert.is(smaller.size, 1);
});

test('the files of a run being indexed are never evicted under their writer, however many runs are used meanwhile', async () => {
  const cacheDir = path.join(dir, 'held');
  const cache = SectionCache.open(cacheDir, 1);
  cache.hold(10);
  fs.writeFileSync(cache.filesOf(10).records, '');
  for (const id of [11, 12, 13]) {
    fs.writeFileSync(cache.filesOf(id).records, '');
    cache.touch(id);
  }
  assert.equal(indexed(cacheDir), [10, 13]);
  cache.release(10);
  assert.equal(indexed(cacheDir), [10], 'let go: the one used last');
});

test.run();
