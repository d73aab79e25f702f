import { suite } from 'uvu';
import WebSocket from 'ws';
import * as assert from 'uvu/assert';
import { createProject, shellPipeline, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';
import { setUp } from '../helpers/setup.js';

export const PROTOCOL_PIPELINES = {
  p: shellPipeline({ a: 'echo hello' }),
  // Each of the first two lines says when the step wrote it (ms), by the step's own clock.
  timed: shellPipeline({ a: 'echo "first $(date +%s%3N)"; sleep 1; echo "second $(date +%s%3N)"; i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done' }),
  // About 20 MB of log (scope `all`), more than a paused client's socket and buffers take; `from_b`: a quick run.
  big: shellPipeline({ a: 'yes "a line of a large log, long enough that it takes a while to send" | head -n 300000', b: 'echo done' }),
};
export const PROTOCOL_ENV = { HUB_WS_MAX_SUBSCRIPTIONS: '5' };

/**
 * The WebSocket protocol's answers to bad and excessive input, against any hub `start` gives (the
 * embedded one, or either hub of a cluster): the same messages and codes whichever it is.
 */
export function protocolSuite(name: string, start: () => Promise<{ hub: TestHub; stop: () => Promise<void> }>): void {
  const protocol = suite<{ hub: TestHub; stop: () => Promise<void>; runId: number }>(`WebSocket protocol errors: ${name}`);

  setUp(protocol, async (context) => {
    Object.assign(context, await start());
    const projectId = await createProject(context.hub, 'p');
    const { body } = await context.hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    context.runId = body.id;
    await waitForRun(context.hub, projectId, body.id, ['completed']);
    // Projects 1 to 6 exist: subscriptions to them count against the limit.
    while ((await context.hub.api('GET', '/api/projects')).body.length < 6) await createProject(context.hub, 'p');
  });
  protocol.after(async ({ stop }) => stop?.());

  const BAD: [unknown, string][] = [
    ['not json', 'invalid_json'],
    ['[1]', 'invalid_message'],
    ['null', 'invalid_message'],
    [{ type: 'subscrbe', run_id: 1 }, 'invalid_type'],
    [{ run_id: 1 }, 'invalid_type'],
    [{ type: 'subscribe' }, 'invalid_message'],
    [{ type: 'subscribe', run_id: 1, project_id: 1 }, 'invalid_message'],
    [{ type: 'subscribe', run_id: '1' }, 'invalid_run_id'],
    [{ type: 'subscribe', run_id: -1 }, 'invalid_run_id'],
    [{ type: 'subscribe', run_id: 1.5 }, 'invalid_run_id'],
    [{ type: 'subscribe', run_id: 1e300 }, 'invalid_run_id'],
    [`{"type":"subscribe","run_id":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, 'invalid_run_id'],
    [{ type: 'subscribe', project_id: 0 }, 'invalid_project_id'],
    [{ type: 'subscribe', run_id: 1, offset: -1 }, 'invalid_offset'],
    [{ type: 'subscribe', run_id: 1, offset: '0' }, 'invalid_offset'],
    [{ type: 'subscribe', run_id: 1, tail: 10001 }, 'invalid_tail'],
    [{ type: 'subscribe', run_id: 1, tail: 1, offset: 0 }, 'invalid_message'],
    [{ type: 'subscribe', run_id: 1, path: '../../etc/passwd' }, 'unknown_field'],
    [{ type: 'subscribe', project_id: 1, tail: 5 }, 'invalid_message'],
    [{ type: 'subscribe', run_id: 1, timestamps: 'yes' }, 'invalid_timestamps'],
    [{ type: 'subscribe', project_id: 1, timestamps: true }, 'invalid_message'],
    [{ type: 'subscribe', run_id: 987654 }, 'not_found'],
    [`{"type":"subscribe","run_id":1,"pad":"${'x'.repeat(70 * 1024)}"}`, 'frame_too_large'],
  ];

  protocol('every malformed message gets an error with a stable code, and the connection stays open', async ({ hub, runId }) => {
    const client = await TestClient.connect(hub.url);
    for (const [message, code] of BAD) {
      const before = client.messages.length;
      client.send(message);
      const reply = await client.waitFor((m) => client.messages.indexOf(m) >= before && m.type === 'error', `an error for ${JSON.stringify(message).slice(0, 80)}`);
      assert.is(reply.code, code, JSON.stringify(message).slice(0, 80));
      assert.type(reply.message, 'string');
    }
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    await client.waitFor((m) => m.code === 'binary_not_supported', 'the binary frame error');
    client.send({ type: 'subscribe', run_id: 999999 });
    const unknown = await client.waitFor((m) => m.type === 'error' && m.run_id === 999999, 'unknown run error');
    assert.is(unknown.code, 'not_found');
    client.send({ type: 'subscribe', run_id: runId, offset: 1_000_000 });
    assert.is((await client.waitFor((m) => m.code === 'invalid_offset', 'offset past the end')).run_id, runId);
    client.send({ type: 'subscribe', run_id: runId, offset: 0 });
    await client.complete(runId);
    assert.equal(client.linesOf(runId, 0).lines.filter((l) => !l.startsWith('[hub]')), ['hello']);
    await client.close();
  });

  protocol('subscriptions past the per-connection limit are refused with an error', async ({ hub }) => {
    const client = await TestClient.connect(hub.url);
    for (let id = 1; id <= 6; id++) client.send({ type: 'subscribe', project_id: id });
    const error = await client.waitFor((m) => m.type === 'error', 'the limit error');
    assert.is(error.code, 'too_many_subscriptions');
    assert.is(error.project_id, 6);
    client.send({ type: 'unsubscribe', project_id: 1 });
    client.send({ type: 'subscribe', project_id: 6 });
    await client.waitFor((m) => m.type === 'subscribed' && m.project_id === 6, 'room after an unsubscribe');
    await client.close();
  });

  protocol('a thousand subscriptions in a burst: the ones past the limit get errors, the connection stays', async ({ hub }) => {
    const client = await TestClient.connect(hub.url);
    for (let id = 1; id <= 1000; id++) client.send({ type: 'subscribe', project_id: id });
    await client.waitFor(() => client.messages.filter((m) => m.type === 'error').length === 995, '995 errors', 15_000);
    assert.is(client.messages.filter((m) => m.type === 'subscribed').length, 5);
    assert.ok(client.messages.filter((m) => m.type === 'error').every((m) => m.code === 'too_many_subscriptions'));
    client.send({ type: 'unsubscribe', project_id: 3 });
    client.send({ type: 'subscribe', project_id: 6 });
    await client.waitFor((m) => m.type === 'subscribed' && m.project_id === 6, 'a subscription after an unsubscribe');
    await client.close();
  });

  /** The lines and times a client got for a run, checked contiguous; times: null when a message had none. */
  const stampedLines = (client: TestClient, runId: number) => {
    const lines: string[] = [];
    const times: (number | null)[] = [];
    let next: number | undefined;
    for (const message of client.messages) {
      if (message.type !== 'lines' || message.run_id !== runId) continue;
      if (next !== undefined) assert.is(message.offset, next, 'contiguous');
      next = message.next;
      const stamps = message.times as (number | null)[] | undefined;
      if (stamps) assert.is(stamps.length, message.lines!.length, 'a time per line');
      message.lines!.forEach((line, index) => {
        lines.push(line);
        times.push(stamps ? stamps[index] : null);
      });
    }
    return { lines, times, stamped: client.messages.some((m) => m.type === 'lines' && 'times' in m) };
  };

  protocol('with timestamps, lines say when they were written: live, caught up later, and over HTTP alike', async ({ hub }) => {
    const projectId = await createProject(hub, 'timed');
    const live = await TestClient.connect(hub.url);
    const plain = await TestClient.connect(hub.url);
    const { body: started } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    live.send({ type: 'subscribe', run_id: started.id, offset: 0, timestamps: true });
    plain.send({ type: 'subscribe', run_id: started.id, offset: 0 });
    await Promise.all([live.complete(started.id), plain.complete(started.id)]);
    const run = await waitForRun(hub, projectId, started.id, ['completed']);

    const asked = stampedLines(live, started.id);
    const notAsked = stampedLines(plain, started.id);
    assert.not.ok(notAsked.stamped, 'nobody gets times without asking');
    assert.equal(asked.lines, notAsked.lines);
    assert.is(asked.lines.length, 3000 + 2 + 2, 'first, second, 3000 lines, step header, end marker');
    const [from, to] = [Date.parse(run.started_at) - 1000, Date.parse(run.finished_at) + 1000];
    asked.times.forEach((time, index) => {
      assert.ok(time !== null && time >= from && time <= to, `line ${index} at ${time}, run from ${from} to ${to}`);
      if (index > 0) assert.ok(time >= asked.times[index - 1]!, `line ${index} not before the one above it`);
    });
    // A line's time is the runner's first sample after the write: never before the step's own clock
    // says it wrote it, and a starved runner samples late (a loaded machine), so the sleep is 1 s.
    const [first, second] = ['first', 'second'].map((word) => {
      const index = asked.lines.findIndex((line) => line.startsWith(`${word} `));
      return { written: Number(asked.lines[index].split(' ')[1]), time: asked.times[index]! };
    });
    for (const line of [first, second]) assert.ok(line.time >= line.written, `stamped ${line.time}, written at ${line.written}`);
    assert.ok(second.time - first.time >= 500, `"second" came 1 s after "first" (times say ${second.time - first.time} ms)`);

    // Later, from the log and its time records: the same lines, each time within a sampling interval or so.
    const late = await TestClient.connect(hub.url);
    late.send({ type: 'subscribe', run_id: started.id, offset: 0, timestamps: true });
    await late.complete(started.id);
    const again = stampedLines(late, started.id);
    assert.equal(again.lines, asked.lines);
    again.times.forEach((time, index) => assert.ok(time !== null && Math.abs(time - asked.times[index]!) <= 1000, `line ${index}: ${time} then, ${asked.times[index]} live`));

    const base = `/api/projects/${projectId}/runs/${started.id}/logs`;
    const page = await hub.api('GET', `${base}?offset=0&timestamps=1`);
    assert.equal(page.body.lines, again.lines);
    assert.equal(page.body.times, again.times, 'HTTP pages and catch-up read the same records');
    assert.is((await hub.api('GET', `${base}?offset=0`)).body.times, undefined);
    const text = await (await fetch(`${hub.url}${base}?tail=2&timestamps=1`, { headers: { accept: 'text/plain' } })).text();
    assert.equal(text.trimEnd().split('\n'), page.body.lines.slice(-2).map((line: string, i: number) => `${new Date(page.body.times.at(-2 + i)).toISOString()} ${line}`));
    assert.is((await hub.api('GET', `${base}?timestamps=yes`)).status, 400);
    await Promise.all([live.close(), plain.close(), late.close()]);
  });

  /** A finished run of about 20 MB in a new project. */
  const finishedBigRun = async (hub: TestHub, projectId: number, scope = 'all') => {
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope });
    return waitForRun(hub, projectId, body.id, ['completed'], 30_000);
  };

  /** Waits until the hub holds `count` run subscribers paused (their sockets over the high-water mark). */
  const waitForPaused = (hub: TestHub, count: number) =>
    waitFor(async () => Number(/^hub_paused_subscribers (\d+)/m.exec((await hub.api('GET', '/metrics')).body)?.[1]) >= count, `${count} paused subscribers`, 20_000);

  /** A client subscribed to `projects`, then following `runId` from 0 with its socket paused once the first lines came. */
  const pausedFollower = async (hub: TestHub, runId: number, projects: number[]) => {
    const client = await TestClient.connect(hub.url);
    for (const id of projects) client.send({ type: 'subscribe', project_id: id });
    await client.waitFor(() => client.messages.filter((m) => m.type === 'subscribed').length === projects.length, 'the project subscriptions');
    client.send({ type: 'subscribe', run_id: runId, offset: 0 });
    await client.waitFor((m) => m.type === 'lines' && m.run_id === runId, 'the first lines');
    client.socket.pause();
    return client;
  };

  /** Resumes a paused follower: what it was sent, then one run_removed, and nothing more for that run; its slot is free again. */
  const expectRemoved = async (client: TestClient, run: { id: number; project_id: number; log_size: number }, reason: string, otherRunId: number) => {
    client.socket.resume();
    const removed = await client.waitFor((m) => m.type === 'run_removed' && m.run_id === run.id, 'run_removed', 30_000);
    assert.equal(removed, { type: 'run_removed', project_id: run.project_id, run_id: run.id, reason });
    const { next } = client.linesOf(run.id, 0); // contiguous from 0
    assert.ok(next < run.log_size, `it was paused part way (${next} of ${run.log_size} bytes)`);
    // The connection's last slot: refused (too_many_subscriptions) while the removed run still held it.
    client.send({ type: 'subscribe', run_id: otherRunId, offset: 0 });
    await client.waitFor((m) => (m.type === 'complete' && m.run_id === otherRunId) || m.type === 'error', 'another subscription');
    assert.equal(client.messages.filter((m) => m.type === 'error'), []);
    const after = client.messages.slice(client.messages.indexOf(removed) + 1);
    assert.not.ok(after.some((m) => m.run_id === run.id), 'nothing more for the removed run');
    assert.is(client.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 0);
  };

  protocol('a follower paused on a large finished run that is purged gets run_removed (once, if it follows the project too), its slot is freed, and a poll is 404', async ({ hub, runId }) => {
    const projectId = await createProject(hub, 'big');
    const run = await finishedBigRun(hub, projectId);
    // Four of its five subscriptions on projects 1 to 4: the run's is its last free slot.
    const follower = await pausedFollower(hub, run.id, [1, 2, 3, 4]);
    const both = await pausedFollower(hub, run.id, [projectId]);
    await waitForPaused(hub, 2);
    assert.is((await hub.api('DELETE', `/api/projects/${projectId}/runs/${run.id}?purge=true`)).status, 204);
    await expectRemoved(follower, run, 'purged', runId);
    await expectRemoved(both, run, 'purged', runId);
    assert.is(both.messages.filter((m) => m.type === 'run_removed').length, 1, 'one run_removed for the project and the run');
    const poll = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs?offset=0`);
    assert.is(poll.status, 404);
    assert.is(poll.body.error.code, 'not_found');
    await Promise.all([follower.close(), both.close()]);
  });

  protocol('a follower paused on a finished run that retention removes as the next run ends gets run_removed, and its slot is freed', async ({ hub, runId }) => {
    const projectId = await createProject(hub, 'big');
    const run = await finishedBigRun(hub, projectId);
    assert.is((await hub.api('PATCH', `/api/projects/${projectId}`, { retention: { runs: 1 } })).status, 200);
    const follower = await pausedFollower(hub, run.id, [1, 2, 3, 4]);
    await waitForPaused(hub, 1);
    await finishedBigRun(hub, projectId, 'from_b');
    await expectRemoved(follower, run, 'retention', runId);
    await follower.close();
  });

  protocol('an SSE stream paused on a large finished run that is purged gets event run_removed, then ends', async ({ hub }) => {
    const projectId = await createProject(hub, 'big');
    const run = await finishedBigRun(hub, projectId);
    const response = await fetch(`${hub.url}/api/projects/${projectId}/runs/${run.id}/logs?offset=0`, { headers: { accept: 'text/event-stream' } });
    assert.is(response.status, 200);
    const reader = response.body!.getReader();
    await reader.read(); // then reads nothing: the hub's buffer fills
    await waitForPaused(hub, 1);
    assert.is((await hub.api('DELETE', `/api/projects/${projectId}/runs/${run.id}?purge=true`)).status, 204);
    const decoder = new TextDecoder();
    let tail = '';
    const deadline = setTimeout(() => {
      reader.cancel(new Error('no end within 30 s')).catch(() => {}); // the read below then ends
    }, 30_000);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        tail = (tail + decoder.decode(value, { stream: true })).slice(-4096);
      }
    } finally {
      clearTimeout(deadline);
    }
    const removed = JSON.stringify({ type: 'run_removed', project_id: projectId, run_id: run.id, reason: 'purged' });
    assert.ok(tail.endsWith(`event: run_removed\ndata: ${removed}\n\n`), `the stream ends with run_removed: …${tail.slice(-300)}`);
    assert.not.ok(tail.includes('event: complete'));
  });

  protocol('a WebSocket upgrade on another path is refused with 404', async ({ hub }) => {
    const socket = new WebSocket(`${hub.url.replace('http', 'ws')}/other`);
    const error = await new Promise<Error>((resolve) => socket.once('error', resolve));
    assert.match(error.message, '404');
  });

  protocol.run();
}
