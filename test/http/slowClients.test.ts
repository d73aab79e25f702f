import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, startHub, waitFor, type TestHub } from '../helpers/hub.js';

const TOKEN = 'slow-clients-token-0123456789';
const slow = suite('slow and silent clients');

/** A raw connection that sent `text` and then nothing more: what it got back, and whether the server closed it. */
interface Stalled {
  socket: net.Socket;
  received: () => string;
  closed: () => boolean;
}

function openStalled(url: string, text: string): Promise<Stalled> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let received = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk) => (received += chunk));
  socket.on('error', () => {}); // a reset is a close
  socket.on('close', () => (closed = true));
  const stalled = { socket, received: () => received, closed: () => closed };
  return new Promise((resolve) => {
    // A connection the server cannot accept may never connect: it counts as open, and the test goes on.
    const timer = setTimeout(() => resolve(stalled), 2000);
    socket.once('connect', () => socket.write(text, () => {
      clearTimeout(timer);
      resolve(stalled);
    }));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(stalled);
    });
  });
}

const headOf = (url: string, requestLine: string, headers: string[]) => `${requestLine} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n${headers.map((header) => `${header}\r\n`).join('')}`;
/** A POST that announces 100 000 bytes of body and sends one. */
const slowBody = (url: string, extra: string[] = []) => `${headOf(url, 'POST /api/projects', ['Content-Type: application/json', 'Content-Length: 100000', ...extra])}\r\n{`;
/** A request head that never ends. */
const slowHead = (url: string) => `${headOf(url, 'GET /api/health', [])}X-Slow: `;

/**
 * Authorized health checks, one after another, each on a connection of its own (as a new client
 * makes them), from a thread of their own so that the test's own work does not add to their times.
 */
const HEALTH_CHECKER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
let stopped = false;
parentPort.on('message', () => (stopped = true));
function check() {
  return new Promise((resolve) => {
    const started = performance.now();
    const request = http.get(workerData.url + '/api/health', { agent: false, headers: { authorization: 'Bearer ' + workerData.token } }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode === 200 ? { ms: performance.now() - started } : { failure: 'status ' + response.statusCode }));
    });
    request.setTimeout(5000, () => request.destroy(new Error('no answer within 5000 ms')));
    request.once('error', (error) => resolve({ failure: error.message }));
  });
}
(async () => {
  while (!stopped) {
    parentPort.postMessage(await check());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  parentPort.postMessage({ done: true });
})();
`;

function checkHealthMeanwhile(url: string) {
  const latencies: number[] = [];
  const failures: string[] = [];
  const worker = new Worker(HEALTH_CHECKER, { eval: true, workerData: { url, token: TOKEN } });
  const done = new Promise<void>((resolve, reject) => {
    worker.on('message', (message: { ms?: number; failure?: string; done?: boolean }) => {
      if (message.ms !== undefined) latencies.push(message.ms);
      if (message.failure !== undefined) failures.push(message.failure);
      if (message.done) resolve();
    });
    worker.once('error', reject);
  });
  let stopped: Promise<void> | undefined;
  return {
    latencies,
    failures,
    stop() {
      stopped ??= (async () => {
        worker.postMessage('stop');
        await done;
        await worker.terminate();
      })();
      return stopped;
    },
  };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

slow('2000 slow-body and slow-header connections from a client without the token do not keep an authorized /api/health from answering', async () => {
  // Descriptors run out at 1024: what 1100 held connections did before.
  const hub = await startHub({ env: { HUB_TOKEN: TOKEN, HUB_DEMO: '0' }, fileLimit: 1024 });
  const health = checkHealthMeanwhile(hub.url);
  const { latencies, failures } = health;
  const bodies: Stalled[] = [];
  const heads: Stalled[] = [];
  try {
    // The same checks without the crowd, for comparison.
    await waitFor(() => latencies.length >= 30 || failures.length > 0, '30 health checks before the crowd', 10_000);
    const before = latencies.splice(0).sort((a, b) => a - b);
    // 1000 heads that never end, then 1000 bodies that never come, 100 connections at a time.
    for (let opened = 0; opened < 2000; opened += 100) {
      const body = opened >= 1000;
      const batch = await Promise.all(Array.from({ length: 100 }, () => openStalled(hub.url, body ? slowBody(hub.url) : slowHead(hub.url))));
      (body ? bodies : heads).push(...batch);
    }
    const whileOpening = latencies.length;
    // The crowd stays; health goes on being asked for two seconds more.
    const until = Date.now() + 2000;
    await waitFor(() => Date.now() > until && latencies.length + failures.length > 0, 'two seconds of checks with the crowd connected', 10_000);
    await health.stop();
    assert.equal(failures.slice(0, 5), [], `${failures.length} of ${failures.length + latencies.length} health checks failed`);
    // Refused before its body was read: answered 401, and the connection closed, not held.
    await waitFor(() => bodies.every((stalled) => stalled.closed()), `the server to close every refused slow-body connection (${bodies.filter((s) => !s.closed()).length} open)`, 10_000);
    const unanswered = bodies.filter((stalled) => !stalled.received().startsWith('HTTP/1.1 401'));
    assert.is(unanswered.length, 0, `${unanswered.length} slow-body connections were not answered 401 (not accepted?): ${JSON.stringify(unanswered[0]?.received().slice(0, 100))}`);
    const opening = latencies.slice(0, whileOpening).sort((a, b) => a - b);
    const held = latencies.slice(whileOpening).sort((a, b) => a - b);
    const stillOpen = heads.filter((stalled) => !stalled.closed()).length;
    const summary = (sorted: number[]) => `${sorted.length} checks, p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
    console.log(`  (/api/health before the crowd: ${summary(before)}; while 2000 connections were opened: ${summary(opening)}; while they were held: ${summary(held)}; slow-header connections still open: ${stillOpen} of ${heads.length})`);
  } finally {
    await health.stop();
    for (const stalled of [...bodies, ...heads]) stalled.socket.destroy();
    await hub.stop();
  }
});

slow('an answer given before the body is read closes the connection; a request read whole keeps it', async () => {
  const hub = await startHub({ env: { HUB_TOKEN: TOKEN, HUB_DEMO: '0' } });
  try {
    for (const [text, status] of [
      [slowBody(hub.url), 401],
      [slowBody(hub.url, [`Authorization: Bearer ${TOKEN}`, 'Origin: http://evil.example']), 403],
      [`${headOf(hub.url, 'POST /api/projects', [`Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', 'Content-Length: 2000000'])}\r\n{`, 413],
      [`${headOf(hub.url, 'POST /api/projects', [`Authorization: Bearer ${TOKEN}`, 'Content-Type: text/plain', 'Content-Length: 100000'])}\r\n{`, 415],
    ] as const) {
      const stalled = await openStalled(hub.url, text);
      await waitFor(() => stalled.closed(), `the connection answered ${status} to be closed`, 5000);
      assert.match(stalled.received(), new RegExp(`^HTTP/1.1 ${status} `), stalled.received().slice(0, 100));
      assert.match(stalled.received(), /\r\nConnection: close\r\n/i, stalled.received().slice(0, 300));
    }
    // Any refusal of a client without the token closes: no idle keep-alive connections for it either.
    const refused = await openStalled(hub.url, `${headOf(hub.url, 'GET /api/health', [])}\r\n`);
    await waitFor(() => refused.closed(), 'the connection answered 401 to be closed', 5000);
    assert.match(refused.received(), /^HTTP\/1.1 401 /);
    // An authorized request read whole keeps its connection: a second request on it is answered too.
    const health = `${headOf(hub.url, 'GET /api/health', [`Authorization: Bearer ${TOKEN}`])}\r\n`;
    const kept = await openStalled(hub.url, health);
    await waitFor(() => kept.received().includes('{"status":"ok"'), 'the health answer');
    assert.match(kept.received(), /\r\nConnection: keep-alive\r\n/i);
    kept.socket.write(health);
    await waitFor(() => kept.received().split('{"status":"ok"').length === 3 || kept.closed(), 'the second health answer on the same connection');
    assert.is(kept.closed(), false);
    kept.socket.destroy();
  } finally {
    await hub.stop();
  }
});

slow('headers and bodies have deadlines (408), and a log stream lasting longer than both is not cut', async () => {
  const hub = await startHub({
    env: { HUB_TOKEN: TOKEN, HUB_DEMO: '0', HUB_HEADERS_TIMEOUT_MS: '500', HUB_REQUEST_TIMEOUT_MS: '1000' },
    pipelines: { long: { steps: [{ name: 'long', command: nodeStep("let i = 0; const t = setInterval(() => { console.log('tick ' + (++i)); if (i === 30) clearInterval(t); }, 100);") }], scopes: { all: 'long' } } },
  });
  try {
    const head = await openStalled(hub.url, slowHead(hub.url));
    const body = await openStalled(hub.url, slowBody(hub.url, [`Authorization: Bearer ${TOKEN}`]));
    // Within 5 s (0.5 s and 1 s, checked every 250 ms), not ~75 s and never.
    await waitFor(() => head.closed() && body.closed(), 'both stalled requests to be closed', 5000);
    assert.match(head.received(), /^HTTP\/1.1 408 /);
    assert.match(body.received(), /^HTTP\/1.1 408 /);
    // A 3-second run followed over SSE: the response outlives both deadlines (they are for receiving requests).
    const authorized: TestHub = { ...hub, api: (method, path, json, headers) => hub.api(method, path, json, { authorization: `Bearer ${TOKEN}`, ...headers }) };
    const projectId = await createProject(authorized, 'long');
    const { body: run } = await authorized.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const stream = await fetch(`${hub.url}/api/projects/${projectId}/runs/${run.id}/logs?offset=0`, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' } });
    const text = await stream.text();
    assert.match(text, /tick 30/);
    assert.match(text, /event: complete/);
  } finally {
    await hub.stop();
  }
});

slow.run();
