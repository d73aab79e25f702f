import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunTail } from '../../server/hub/runTail.js';
import type { LogSink } from '../../server/hub/messages.js';
import { LocalLogSource } from '../../server/logs/logSource.js';
import { FakeSink } from '../helpers/fakeSink.js';
import { waitFor } from '../helpers/hub.js';


function tempLog(content = ''): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-tail-')), 'run.log');
  fs.writeFileSync(file, content);
  return file;
}

const complete = { type: 'complete' as const, run_id: 1, status: 'completed' as const, exit_code: 0, error_message: null };
const tailOf = (file: string, onIdle?: () => void) => new RunTail({ runId: 1, source: new LocalLogSource(file), maxLineBytes: 64, onIdle });
const follow = (tail: RunTail, sink: LogSink, offset: number, onEnd?: () => void) => tail.start(tail.add(sink, offset, onEnd));

test('the live edge: appended lines go out as batches, a partial line waits for its newline, the last one comes with complete', async () => {
  const file = tempLog();
  const tail = tailOf(file);
  const sink = new FakeSink();
  await tail.ensureOpen();
  follow(tail, sink, 0);
  fs.appendFileSync(file, 'a\nb\n');
  await tail.pump();
  await waitFor(() => sink.lines(0).length === 2, 'two lines');
  fs.appendFileSync(file, 'par');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await tail.pump();
  assert.equal(sink.lines(0), ['a', 'b'], 'nothing of a line still being written');
  fs.appendFileSync(file, 'tial\nend without newline');
  tail.end(fs.statSync(file).size, complete);
  await waitFor(() => sink.messages.some((m) => m.type === 'complete'), 'complete');
  assert.equal(sink.lines(0), ['a', 'b', 'partial', 'end without newline']);
  assert.is(sink.messages.at(-1)!.body.next, fs.statSync(file).size);
  await tail.close();
});

test('catch-up: a late subscriber reads from its own offset to the live edge, then gets live batches', async () => {
  const text = Array.from({ length: 3000 }, (_, i) => `line ${i} ${'é'.repeat(i % 5)}`).join('\n') + '\n';
  const file = tempLog(text);
  const tail = tailOf(file);
  const early = new FakeSink();
  await tail.ensureOpen();
  follow(tail, early, 0);
  await tail.pump();
  const offset = Buffer.byteLength(text.slice(0, text.indexOf('line 1000 ')));
  const late = new FakeSink();
  follow(tail, late, offset);
  await waitFor(() => late.lines(offset).length === 2000, 'the late subscriber to catch up');
  fs.appendFileSync(file, 'more\n');
  await tail.pump();
  await waitFor(() => late.lines(offset).at(-1) === 'more' && early.lines(0).at(-1) === 'more', 'the new line, to both');
  assert.is(early.lines(0).length, 3001);
  assert.is(late.lines(offset)[0], 'line 1000 ');
  await tail.close();
});

test('a subscriber whose socket is full is paused, not buffered for, and resumes where it was', async () => {
  const file = tempLog();
  const tail = tailOf(file);
  const slow = new FakeSink();
  await tail.ensureOpen();
  follow(tail, slow, 0);
  fs.appendFileSync(file, 'one\n');
  await tail.pump();
  await waitFor(() => slow.lines(0).length === 1, 'the first line');
  slow.full = true;
  for (let i = 0; i < 20; i++) {
    fs.appendFileSync(file, `while full ${i}\n`);
    await new Promise((resolve) => setTimeout(resolve, 3));
    await tail.pump();
  }
  const sentWhileFull = slow.messages.length;
  assert.ok(sentWhileFull <= 2, `at most one frame went to a full socket (${sentWhileFull})`);
  slow.drain();
  await waitFor(() => slow.lines(0).length === 21, 'the rest after the drain');
  await tail.close();
});

test('a finished log: every line from the offset, then complete; a log truncated under a live reader ends subscriptions with log_reset', async () => {
  const file = tempLog('x\ny\nz');
  const finished = tailOf(file);
  finished.finishAt({ ...complete, next: 5 });
  const sink = new FakeSink();
  await finished.ensureOpen();
  let ended = 0;
  follow(finished, sink, 2, () => ended++);
  await waitFor(() => sink.messages.some((m) => m.type === 'complete'), 'complete');
  assert.equal(sink.lines(2), ['y', 'z']);
  assert.is(ended, 1);
  await finished.close();

  const live = tempLog('1\n2\n3\n');
  let idle = 0;
  const tail = tailOf(live, () => idle++);
  const reader = new FakeSink();
  await tail.ensureOpen();
  follow(tail, reader, 0, () => reader.ended.push(1));
  await tail.pump();
  await waitFor(() => reader.lines(0).length === 3, 'three lines');
  fs.truncateSync(live, 0);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await tail.pump();
  await waitFor(() => reader.messages.some((m) => m.type === 'error'), 'log_reset');
  assert.is(reader.messages.at(-1)!.body.code, 'log_reset');
  assert.is(reader.ended.length, 1);
  await waitFor(() => idle > 0, 'the reader to report itself idle');
  await tail.close();
});

test.run();
