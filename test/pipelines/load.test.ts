import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPipelines } from '../../server/pipelines/load.js';
import { builtInPipelinesFile } from '../../server/paths.js';
import { startHub } from '../helpers/hub.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipelines-'));
const write = (content: unknown) => {
  const file = path.join(dir, `${Math.random()}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
};
const good = { steps: [{ name: 'a', command: ['true'] }], scopes: { all: 'a' } };

test('the built-in pipelines file defines glossary with its three scopes', () => {
  const glossary = loadPipelines(builtInPipelinesFile).get('glossary')!;
  assert.equal(glossary.steps.map((s) => s.name), ['extract', 'provisional', 'issues', 'refined']);
  assert.equal(glossary.scopes, { full: 'extract', from_terms: 'provisional', provisional_to_refined: 'issues' });
});

test('cwd defaults to the folder of the pipelines file', () => {
  const file = write({ pipelines: { p: good } });
  assert.is(loadPipelines(file).get('p')!.steps[0].cwd, dir);
});

const cases: [string, unknown, RegExp][] = [
  ['not JSON', '{', /not valid JSON/],
  ['no pipelines', {}, /top level/],
  ['a command string', { pipelines: { p: { ...good, steps: [{ name: 'a', command: 'rm -rf /' }] } } }, /pipeline "p", field "steps\[0\]"\.command/],
  ['a scope naming no step', { pipelines: { p: { ...good, scopes: { all: 'zz' } } } }, /pipeline "p", field "scopes\.all"/],
  ['a bad timeout', { pipelines: { p: { ...good, steps: [{ name: 'a', command: ['x'], timeout_s: -1 }] } } }, /timeout_s/],
  ['a duplicate step', { pipelines: { p: { ...good, steps: [{ name: 'a', command: ['x'] }, { name: 'a', command: ['y'] }] } } }, /appears twice/],
  ['an unknown field', { pipelines: { p: { ...good, steps: [{ name: 'a', command: ['x'], shell: true }] } } }, /steps\[0\]"\.shell: unknown field/],
];
for (const [name, content, pattern] of cases) {
  test(`a pipelines file with ${name} is rejected, naming the file and the field`, () => {
    const file = write(content);
    assert.throws(() => loadPipelines(file), (error: Error) => pattern.test(error.message) && error.message.includes(file));
  });
}

test('a bad pipelines file stops the server at start with the message', async () => {
  const file = write({ pipelines: { p: { ...good, scopes: { all: 'zz' } } } });
  try {
    await startHub({ env: { HUB_PIPELINES: file } });
    assert.unreachable('the server started');
  } catch (error) {
    assert.match((error as Error).message, /exited with 1 before listening/);
    assert.match((error as Error).message, 'field "scopes.all"');
  }
});

test.run();
