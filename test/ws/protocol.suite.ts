import { suite } from 'uvu';
import WebSocket from 'ws';
import * as assert from 'uvu/assert';
import { createProject, shellPipeline, waitForRun, type TestHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';
import { setUp } from '../helpers/setup.js';

export const PROTOCOL_PIPELINES = { p: shellPipeline({ a: 'echo hello' }) };
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
    [{ type: 'subscribe', project_id: 0 }, 'invalid_project_id'],
    [{ type: 'subscribe', run_id: 1, offset: -1 }, 'invalid_offset'],
    [{ type: 'subscribe', run_id: 1, offset: '0' }, 'invalid_offset'],
    [{ type: 'subscribe', run_id: 1, tail: 10001 }, 'invalid_tail'],
    [{ type: 'subscribe', run_id: 1, tail: 1, offset: 0 }, 'invalid_message'],
    [{ type: 'subscribe', run_id: 1, path: '../../etc/passwd' }, 'unknown_field'],
    [{ type: 'subscribe', project_id: 1, tail: 5 }, 'invalid_message'],
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

  protocol('a WebSocket upgrade on another path is refused with 404', async ({ hub }) => {
    const socket = new WebSocket(`${hub.url.replace('http', 'ws')}/other`);
    const error = await new Promise<Error>((resolve) => socket.once('error', resolve));
    assert.match(error.message, '404');
  });

  protocol.run();
}
