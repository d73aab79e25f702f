import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHub } from '../helpers/hub.js';

/** A raw connection to the hub that has sent `sent` and then nothing more. */
async function connectSlow(url: string, sent: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  if (sent) socket.write(sent.replaceAll('HOST', `${hostname}:${port}`));
  return socket;
}

const SLOW = {
  'a connection that has sent nothing': '',
  'headers cut in the middle': 'GET /api/health HTTP/1.1\r\nHo',
  'a body stalled after its headers': 'POST /api/projects HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"na',
};

for (const [what, sent] of Object.entries(SLOW)) {
  test(`SIGTERM with ${what} still exits 0 within 3 s (the slow connection is cut, not waited for)`, async () => {
    const hub = await startHub({ env: { HUB_DEMO: '0' } });
    const socket = await connectSlow(hub.url, sent);
    try {
      // The request is in the server's hands before the signal.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await hub.stop('SIGTERM');
      const took = Date.now() - started;
      assert.is(hub.process.exitCode, 0, `exit code ${hub.process.exitCode} after ${took} ms:\n${hub.output().slice(-500)}`);
      assert.ok(took < 3000, `exited in ${took} ms`);
    } finally {
      socket.destroy();
    }
  });
}

test.run();
