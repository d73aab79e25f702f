import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, startHub, waitFor, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

/** A step that writes `text` in the given pieces, pausing between writes (stdout is the log file). */
function chunkedWriter(text: string, pieces: number, pauseMs: number) {
  const bytes = Buffer.from(text);
  const cuts = Array.from({ length: pieces }, (_, i) => Math.floor(((i + 1) * bytes.length) / (pieces + 1)));
  return nodeStep(`
    const fs = require('fs');
    const bytes = Buffer.from(${JSON.stringify(bytes.toString('base64'))}, 'base64');
    const cuts = [...${JSON.stringify(cuts)}, bytes.length];
    let start = 0, i = 0;
    const next = () => {
      if (i === cuts.length) return;
      fs.writeSync(1, bytes.subarray(start, cuts[i]));
      start = cuts[i++];
      setTimeout(next, ${pauseMs});
    };
    next();`);
}

const TRICKY = 'alpha\r\nβeta 日本語 😀\nprogress 10%\rprogress 100%\n' + 'x'.repeat(5000) + '\n\nlast without newline';
const TRICKY_LINES = ['alpha', 'βeta 日本語 😀', 'progress 10%\rprogress 100%', 'x'.repeat(5000), '', 'last without newline'];
const BURST = 100_000;

const delivery = suite<{ hub: TestHub }>('log delivery over WebSocket');

delivery.before(async (context) => {
  const one = (name: string, command: string[]) => ({ steps: [{ name, command }], scopes: { all: name } });
  context.hub = await startHub({
    env: { HUB_WS_HIGH_WATER_BYTES: String(64 * 1024) },
    pipelines: {
      // 97 pieces: boundaries fall inside multi-byte characters and between \r and \n.
      tricky: one('split', chunkedWriter(TRICKY, 97, 3)),
      burst: one('burst', nodeStep(`for (let i = 1; i <= ${BURST}; i++) console.log('burst line ' + i + ' ' + 'y'.repeat(60));`)),
      huge: one('huge', nodeStep(`process.stdout.write('<' + 'é'.repeat(5 * 1024 * 1024) + '>\\n');`)),
      // ~6 MiB: plain lines, multi-byte and \r lines, and a 2.5 MiB line cut into pieces.
      mixed: one('mixed', nodeStep(`
        const fs = require('fs');
        const out = [];
        for (let i = 0; i < 40000; i++) out.push(i % 7 === 0 ? 'ünïcödé ' + i + ' 日本語 😀' : i % 11 === 0 ? 'step ' + i + '\\r' + 'done' : 'line ' + i + ' ' + 'z'.repeat(i % 90));
        out.push('é'.repeat(1280 * 1024));
        for (let i = 0; i < 20000; i++) out.push('after ' + i);
        fs.writeSync(1, out.join('\\n') + '\\n');`)),
      paced: one('paced', nodeStep(`let i = 0; const t = setInterval(() => { console.log('paced ' + (++i)); if (i === 300) clearInterval(t); }, 5);`)),
    },
  });
});
delivery.after(async ({ hub }) => hub.stop());

async function startRun(hub: TestHub, pipeline: string) {
  const projectId = await createProject(hub, pipeline);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  return { projectId, runId: body.id as number };
}

const withoutMarkers = (lines: string[]) => lines.filter((line) => !line.startsWith('[hub] '));

delivery('writes split anywhere arrive as intact lines, exactly once, in order, then one complete', async ({ hub }) => {
  const client = await TestClient.connect(hub.url);
  const { runId, projectId } = await startRun(hub, 'tricky');
  client.send({ type: 'subscribe', run_id: runId, offset: 0 });
  const complete = await client.complete(runId);
  const { lines, next } = client.linesOf(runId, 0);
  assert.equal(withoutMarkers(lines), TRICKY_LINES);
  assert.is(lines[0], '[hub] step 1/1: split');
  assert.is(lines.at(-1), '[hub] run completed');
  assert.ok(!lines.join('').includes('\ufffd'), 'no replacement character');
  assert.is(complete.status, 'completed');
  assert.is(complete.exit_code, 0);
  assert.is(complete.next, next);
  const run = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}`);
  assert.is(complete.next, run.body.log_size, 'complete.next is the size of the log');
  assert.is(client.messages.filter((m) => m.type === 'complete').length, 1);
  assert.is(client.messages.findIndex((m) => m.type === 'complete'), client.messages.length - 1, 'nothing after complete');
  const bytes = fs.readFileSync(path.join(hub.dir, 'logs', run.body.log_path));
  assert.is(bytes.toString('utf8').replace(/\r\n/g, '\n').split('\n').slice(0, -1).join('\n'), lines.join('\n'), 'the same as the raw file');
  await client.close();
});

delivery('100k lines printed in a burst and exit: two subscribers get every one, batched', async ({ hub }) => {
  const a = await TestClient.connect(hub.url);
  const b = await TestClient.connect(hub.url);
  const { runId } = await startRun(hub, 'burst');
  a.send({ type: 'subscribe', run_id: runId, offset: 0 });
  b.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await Promise.all([a.complete(runId, 30_000), b.complete(runId, 30_000)]);
  for (const client of [a, b]) {
    const lines = withoutMarkers(client.linesOf(runId, 0).lines);
    assert.is(lines.length, BURST);
    lines.forEach((line, index) => {
      if (!line.startsWith(`burst line ${index + 1} `)) assert.unreachable(`line ${index}: ${line}`);
    });
    const frames = client.messages.filter((m) => m.type === 'lines').length;
    assert.ok(frames < BURST / 50, `batched: ${frames} frames for ${BURST} lines`);
  }
  await Promise.all([a.close(), b.close()]);
});

delivery('a late subscriber to a finished run gets the range it asks for, then complete at once', async ({ hub }) => {
  const first = await TestClient.connect(hub.url);
  const { runId } = await startRun(hub, 'tricky');
  first.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await first.complete(runId);
  const all = first.linesOf(runId, 0);
  const late = await TestClient.connect(hub.url);
  late.send({ type: 'subscribe', run_id: runId, tail: 3 });
  const complete = await late.complete(runId);
  const subscribed = late.messages.find((m) => m.type === 'subscribed')!;
  assert.equal(late.linesOf(runId, subscribed.offset as number).lines, all.lines.slice(-3));
  assert.is(complete.next, all.next);
  const whole = await TestClient.connect(hub.url);
  whole.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await whole.complete(runId);
  assert.equal(whole.linesOf(runId, 0).lines, all.lines);
  await Promise.all([first.close(), late.close(), whole.close()]);
});

delivery('many subscribers catching up from different offsets at once each get exactly the log from theirs', async ({ hub }) => {
  const { runId, projectId } = await startRun(hub, 'mixed');
  const first = await TestClient.connect(hub.url);
  first.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await first.complete(runId, 30_000);
  const log = fs.readFileSync(path.join(hub.dir, 'logs', String(projectId), `${runId}.log`));
  // Line starts spread over the log, so their catch-up reads start off the grid and must fall into step.
  const starts = [0];
  for (let at = 0; starts.length < 16; ) {
    at = log.indexOf(0x0a, at + 1 + Math.floor(log.length / 17)) + 1;
    if (at <= 0 || at >= log.length) break;
    starts.push(at);
  }
  const clients = await Promise.all(starts.map(() => TestClient.connect(hub.url)));
  clients.forEach((client, i) => client.send({ type: 'subscribe', run_id: runId, offset: starts[i] }));
  await Promise.all(clients.map((client) => client.complete(runId, 30_000)));
  clients.forEach((client, i) => {
    let text = '';
    let next = starts[i];
    for (const message of client.messages.filter((m) => m.type === 'lines')) {
      assert.is(message.offset, next, `client ${i}: each frame starts where the last ended`);
      message.lines!.forEach((line, index) => (text += line + (message.continued?.includes(index) ? '' : '\n')));
      next = message.next!;
    }
    assert.is(next, log.length);
    assert.ok(text === log.subarray(starts[i]).toString(), `client ${i} from ${starts[i]}: the log, exactly`);
  });
  await Promise.all([first, ...clients].map((client) => client.close()));
});

delivery('a 10 MiB line arrives in pieces of at most 1 MiB, marked continued, and joins back whole', async ({ hub }) => {
  const client = await TestClient.connect(hub.url);
  const { runId } = await startRun(hub, 'huge');
  client.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await client.complete(runId, 30_000);
  const pieces: string[] = [];
  const continued: boolean[] = [];
  for (const message of client.messages.filter((m) => m.type === 'lines')) {
    message.lines!.forEach((line, index) => {
      pieces.push(line);
      continued.push(message.continued?.includes(index) ?? false);
    });
  }
  const start = pieces.findIndex((piece) => piece.startsWith('<'));
  const end = pieces.findIndex((piece) => piece.endsWith('>'));
  assert.ok(end - start >= 9, `${end - start + 1} pieces`);
  for (let i = start; i <= end; i++) {
    assert.ok(Buffer.byteLength(pieces[i]) <= 1024 * 1024);
    assert.is(continued[i], i < end);
  }
  assert.is(pieces.slice(start, end + 1).join(''), `<${'é'.repeat(5 * 1024 * 1024)}>`);
  await client.close();
});

delivery('a subscriber that reads nothing is paused, never slows the others, then catches up exactly', async ({ hub }) => {
  const fast = await TestClient.connect(hub.url);
  const slow = await TestClient.connect(hub.url);
  const { runId } = await startRun(hub, 'burst');
  // Stop reading the socket: the server's buffer for it fills past the high-water mark.
  (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
  fast.send({ type: 'subscribe', run_id: runId, offset: 0 });
  slow.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await fast.complete(runId, 30_000);
  assert.is(withoutMarkers(fast.linesOf(runId, 0).lines).length, BURST);
  assert.not.ok(slow.messages.some((m) => m.type === 'complete'), 'the slow one is not done yet');
  (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
  await slow.complete(runId, 30_000);
  assert.equal(slow.linesOf(runId, 0).lines, fast.linesOf(runId, 0).lines);
  await Promise.all([fast.close(), slow.close()]);
});

delivery('a client that reconnects and resumes from its last next gets no gap and no duplicate', async ({ hub }) => {
  const first = await TestClient.connect(hub.url);
  const { runId } = await startRun(hub, 'paced');
  first.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await first.waitFor((m) => m.type === 'lines' && m.lines!.some((line) => line === 'paced 50'), 'line 50');
  await first.close();
  const before = first.linesOf(runId, 0);
  const second = await TestClient.connect(hub.url);
  second.send({ type: 'subscribe', run_id: runId, offset: before.next });
  await second.complete(runId);
  const after = second.linesOf(runId, before.next);
  const paced = withoutMarkers([...before.lines, ...after.lines]);
  assert.equal(paced, Array.from({ length: 300 }, (_, i) => `paced ${i + 1}`));
  await second.close();
});

delivery('project subscribers see run records change: created, started, progress, finished', async ({ hub }) => {
  const projectId = await createProject(hub, 'paced');
  const client = await TestClient.connect(hub.url);
  client.send({ type: 'subscribe', project_id: projectId });
  await client.waitFor((m) => m.type === 'subscribed', 'the subscription');
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await client.waitFor((m) => m.type === 'run' && (m.run as { status: string }).status === 'completed', 'the finished run');
  const statuses = client.messages.filter((m) => m.type === 'run').map((m) => (m.run as { id: number; status: string }));
  assert.ok(statuses.every((run) => run.id === body.id));
  assert.equal([...new Set(statuses.map((run) => run.status))], ['pending', 'running', 'completed']);
  await client.close();
});

delivery('a server killed mid-run and restarted: a client resuming from its last next gets every line once', async () => {
  const pipelines = { paced: { steps: [{ name: 'paced', command: nodeStep(`let i = 0; const t = setInterval(() => { console.log('paced ' + (++i)); if (i === 400) clearInterval(t); }, 5);`) }], scopes: { all: 'paced' } } };
  const first = await startHub({ pipelines });
  const { runId, projectId } = await startRun(first, 'paced');
  const before = await TestClient.connect(first.url);
  before.send({ type: 'subscribe', run_id: runId, offset: 0 });
  await before.waitFor((m) => m.type === 'lines' && m.lines!.includes('paced 100'), 'line 100');
  await first.stop('SIGKILL');
  await waitFor(() => before.socket.readyState === before.socket.CLOSED, 'the socket to close');
  const seen = before.linesOf(runId, 0);
  const second = await startHub({ pipelines, dir: first.dir });
  try {
    const after = await TestClient.connect(second.url);
    after.send({ type: 'subscribe', run_id: runId, offset: seen.next });
    const complete = await after.complete(runId, 20_000);
    assert.is(complete.status, 'completed');
    const lines = withoutMarkers([...seen.lines, ...after.linesOf(runId, seen.next).lines]);
    assert.equal(lines, Array.from({ length: 400 }, (_, i) => `paced ${i + 1}`));
    const run = await second.api('GET', `/api/projects/${projectId}/runs/${runId}`);
    assert.is(complete.next, run.body.log_size);
    await after.close();
  } finally {
    await second.stop();
  }
});

delivery.run();
