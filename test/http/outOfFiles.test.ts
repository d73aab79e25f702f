import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { createProject, nodeStep, startHub, waitForRun } from '../helpers/hub.js';

/** The server's file limit: a few dozen above what it needs idle, so open WebSockets can take the rest. */
const FILE_LIMIT = 120;

test('a server out of file descriptors answers reads with 503 server_busy (not 500), and serves them again once some are free', async () => {
  const hub = await startHub({ fileLimit: FILE_LIMIT, pipelines: { p: { steps: [{ name: 's', command: nodeStep("console.log('hello a')") }], scopes: { all: 's' } } } });
  const sockets: WebSocket[] = [];
  try {
    const projectId = await createProject(hub, 'p');
    const run = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    await waitForRun(hub, projectId, run.id, ['completed']);
    // More WebSockets than the server has descriptors: every one it has is taken (the requests below
    // go over the keep-alive connection the calls above opened).
    while (sockets.length < FILE_LIMIT + 20) {
      const socket = new WebSocket(`${hub.url.replace('http', 'ws')}/ws`);
      socket.on('error', () => {});
      sockets.push(socket);
      await new Promise((resolve) => socket.once('open', resolve).once('close', resolve));
    }
    const paths = [`/logs?offset=0`, `/logs/search?q=hello`, `/logs/search?q=h.llo&regex=1`, `/logs/raw`];
    let busy = 0;
    for (const path of paths) {
      const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}${path}`).catch(() => ({ status: 0, body: null }));
      assert.ok([200, 503, 0].includes(status), `${path}: ${status} ${JSON.stringify(body)}`);
      if (status === 503) {
        assert.is(body.error.code, 'server_busy', path);
        busy++;
      }
    }
    assert.ok(busy > 0, 'at least one read met the full descriptor table (else the test proves nothing)');
    for (const socket of sockets) socket.terminate();
    const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/search?q=hello`);
    assert.is(status, 200);
    assert.is(body.matches.length, 1);
  } finally {
    for (const socket of sockets) socket.terminate();
    await hub.stop();
  }
});

test.run();
