import { suite } from 'uvu';
import WebSocket from 'ws';
import * as assert from 'uvu/assert';
import { createProject, shellPipeline, waitForRun, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';
import { setUp } from '../helpers/setup.js';

export const PROTOCOL_PIPELINES = {
  p: shellPipeline({ a: 'echo hello' }),
  timed: shellPipeline({ a: 'echo first; sleep 0.4; echo second; i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done' }),
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
    const gap = asked.times[asked.lines.indexOf('second')]! - asked.times[asked.lines.indexOf('first')]!;
    assert.ok(gap >= 300, `"second" came 0.4 s after "first" (times say ${gap} ms)`);

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

  protocol('a WebSocket upgrade on another path is refused with 404', async ({ hub }) => {
    const socket = new WebSocket(`${hub.url.replace('http', 'ws')}/other`);
    const error = await new Promise<Error>((resolve) => socket.once('error', resolve));
    assert.match(error.message, '404');
  });

  protocol.run();
}
