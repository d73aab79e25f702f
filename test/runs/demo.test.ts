import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHub, waitForRun } from '../helpers/hub.js';

test('the demo project exists on first start and its glossary pipeline runs every scope, twice', async () => {
  const hub = await startHub();
  try {
    const projects = await hub.api('GET', '/api/projects');
    assert.is(projects.body.length, 1);
    const demo = projects.body[0];
    assert.is(demo.pipeline, 'glossary');
    for (const scope of ['full', 'from_terms', 'provisional_to_refined', 'full']) {
      const { body } = await hub.api('POST', `/api/projects/${demo.id}/runs`, { scope });
      const run = await waitForRun(hub, demo.id, body.id, ['completed', 'failed'], 30_000);
      assert.is(run.status, 'completed', `${scope}: ${run.error_message}`);
    }
    const outputs = path.join(hub.dir, 'data', 'outputs', String(demo.id));
    const glossary = fs.readFileSync(path.join(outputs, 'glossary.md'), 'utf8');
    assert.match(glossary, '**glossary**');
    assert.match(glossary, '**用語集**');
    const terms = JSON.parse(fs.readFileSync(path.join(outputs, 'terms.json'), 'utf8'));
    assert.ok(terms.some((t: { term: string }) => t.term === 'パイプライン'));
  } finally {
    await hub.stop();
  }
});

test('an empty doc_root fails the run with "No documents found in doc_root"', async () => {
  const hub = await startHub();
  try {
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'empty-'));
    const project = await hub.api('POST', '/api/projects', { name: 'empty', doc_root: docRoot, pipeline: 'glossary' });
    const { body } = await hub.api('POST', `/api/projects/${project.body.id}/runs`, { scope: 'full' });
    const run = await waitForRun(hub, project.body.id, body.id, ['completed', 'failed']);
    assert.is(run.status, 'failed');
    assert.is(run.error_message, 'Step "extract" exited with code 1: No documents found in doc_root');
    const scoped = await hub.api('POST', `/api/projects/${project.body.id}/runs`, { scope: 'from_terms' });
    const second = await waitForRun(hub, project.body.id, scoped.body.id, ['completed', 'failed']);
    assert.match(second.error_message, 'terms.json not found');
  } finally {
    await hub.stop();
  }
});

test.run();
