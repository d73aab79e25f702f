import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalLogSource } from '../../server/logs/logSource.js';
import { readSectionPage } from '../../server/sections/sectionFile.js';
import { SectionIndexer } from '../../server/sections/sectionIndexer.js';
import type { Section } from '../../server/wire.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heapNow = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'section-indexer-'));
const GROUPS = 25_000; // four sections each: 100 000

/** A log of GROUPS × (a group holding a GitLab section holding a Buildkite one, and a sibling Buildkite one left to its group's end). */
function manySectionsLog(): string {
  const file = path.join(dir, 'many.log');
  const parts: string[] = ['[hub] step 1/1: many\n'];
  for (let i = 0; i < GROUPS; i++) {
    parts.push(`::group::g${i}\n\x1b[0Ksection_start:1700000000:s${i}\r\x1b[0KS ${i}\n--- b${i}\nx\n\x1b[0Ksection_end:1700000001:s${i}\r\x1b[0K\n+++ c${i}\ny\n::endgroup::\n`);
  }
  fs.writeFileSync(file, parts.join(''));
  return file;
}

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('indexing and paging 100 000 sections keep the heap bounded: the sections are in the files, not in memory', async () => {
  const log = manySectionsLog();
  const files = { records: path.join(dir, 'many.sections'), names: path.join(dir, 'many.section-names') };
  let batches = 0;
  let largest = 0;
  const before = heapNow();
  const indexer = new SectionIndexer(1, new LocalLogSource(log), files, (sections) => {
    batches++;
    largest = Math.max(largest, sections.length);
  });
  await indexer.end(fs.statSync(log).size);
  const retained = heapNow() - before; // the indexer is still referenced: what it holds
  await indexer.close();
  let after = 0;
  let count = 0;
  let pagesPeak = 0;
  for (;;) {
    const page = (await readSectionPage(files, after, 1000))!;
    assert.ok(page.header.complete);
    if (page.sections.length === 0) break;
    for (const [index, section] of page.sections.entries()) {
      assert.is(section.id, after + index + 1);
      const group = Math.floor((section.id - 1) / 4);
      const shapes: Partial<Section>[] = [
        { name: `g${group}`, depth: 0, parent: null, dialect: 'github', collapsed: false },
        { name: `S ${group}`, depth: 1, parent: section.id - 1, dialect: 'gitlab', key: `s${group}` },
        { name: `b${group}`, depth: 2, parent: section.id - 1, dialect: 'buildkite', collapsed: true },
        { name: `c${group}`, depth: 1, parent: section.id - 3, dialect: 'buildkite', collapsed: false },
      ];
      const expected = shapes[(section.id - 1) % 4];
      for (const [key, value] of Object.entries(expected)) assert.is(section[key as keyof Section], value, `section ${section.id}: ${key}`);
      assert.ok(section.end !== null && section.end > section.start);
    }
    count += page.sections.length;
    after = page.sections.at(-1)!.id;
    if (count % 20_000 === 0) pagesPeak = Math.max(pagesPeak, heapNow() - before);
  }
  const sizes = fs.statSync(files.records).size + fs.statSync(files.names).size;
  console.log(`  ${count} sections (log ${fs.statSync(log).size} bytes) in ${batches} batches of at most ${largest}: heap retained by the indexer ${(retained / 1024).toFixed(0)} KiB, while paging ${(pagesPeak / 1024).toFixed(0)} KiB; index files ${sizes} bytes`);
  assert.is(count, GROUPS * 4);
  // 100 000 sections held as objects take well over 20 MB.
  assert.ok(retained < 2 * 1024 * 1024, `the indexer retained ${retained} bytes`);
  assert.ok(pagesPeak < 2 * 1024 * 1024, `paging retained ${pagesPeak} bytes`);
});

test('a log replaced under the indexer is indexed again from its start', async () => {
  const log = path.join(dir, 'replaced.log');
  fs.writeFileSync(log, '::group::old\nx\n');
  const files = { records: path.join(dir, 'replaced.sections'), names: path.join(dir, 'replaced.section-names') };
  const indexer = new SectionIndexer(2, new LocalLogSource(log), files, () => {});
  indexer.pump();
  for (let tries = 0; (await readSectionPage(files, 0, 10))?.sections.length !== 1; tries++) {
    assert.ok(tries < 200, 'the first group indexed');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  fs.writeFileSync(`${log}.new`, '--- new\n');
  fs.renameSync(`${log}.new`, log);
  await indexer.end(fs.statSync(log).size);
  await indexer.close();
  assert.equal((await readSectionPage(files, 0, 10))!.sections.map((section) => section.name), ['new']);
});

test.run();
