import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { createProject, shellPipeline, startHub, type TestHub } from './helpers/hub.js';

const TOKEN = 'test-token-0123456789abcdef';
const pipelines = { p: shellPipeline({ a: 'echo hi' }) };

function request(hub: TestHub, options: http.RequestOptions & { body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(hub.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: url.hostname, port: url.port, ...options }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function connect(hub: TestHub, options: WebSocket.ClientOptions = {}, protocols?: string[]): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/ws`, protocols, options);
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode! }));
    ws.once('error', () => {});
  });
}

test('Host and Origin: DNS rebinding and cross-site pages are refused; the hub\'s own origin is served', async () => {
  const hub = await startHub({ pipelines, env: { HUB_ALLOWED_ORIGINS: 'http://trusted.example:3000' } });
  try {
    const rebound = await request(hub, { path: '/api/projects', headers: { host: 'evil.example' } });
    assert.is(rebound.status, 403);
    assert.is(JSON.parse(rebound.body).error.code, 'host_not_allowed');
    assert.is((await request(hub, { path: '/api/health', headers: { host: `localhost:${new URL(hub.url).port}` } })).status, 200);
    assert.equal(await connect(hub, { headers: { host: 'evil.example' } }), { status: 403 });
    assert.equal(await connect(hub, { origin: 'http://evil.example' }), { status: 403 });
    const own = await connect(hub, { origin: hub.url });
    assert.ok('ws' in own);
    if ('ws' in own) own.ws.close();
    const trusted = await connect(hub, { origin: 'http://trusted.example:3000' });
    assert.ok('ws' in trusted);
    if ('ws' in trusted) trusted.ws.close();
    const forged = await hub.api('POST', '/api/projects', { name: 'x', doc_root: '/tmp', pipeline: 'p' }, { origin: 'http://evil.example' });
    assert.is(forged.status, 403);
    assert.is(forged.body.error.code, 'origin_not_allowed');
  } finally {
    await hub.stop();
  }
});

test('HUB_TOKEN: every request and handshake needs it (Bearer, login cookie or subprotocol), never echoed', async () => {
  const hub = await startHub({ pipelines, env: { HUB_TOKEN: TOKEN } });
  try {
    const anonymous = await hub.api('GET', '/api/projects');
    assert.is(anonymous.status, 401);
    assert.is(anonymous.body.error.code, 'unauthorized');
    assert.is((await hub.api('GET', '/api/projects', undefined, { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    assert.is((await hub.api('GET', '/api/projects', undefined, { authorization: `Bearer ${TOKEN}` })).status, 200);
    const page = await request(hub, { path: '/', headers: { accept: 'text/html' } });
    assert.is(page.status, 302);
    assert.is(page.headers.location, '/login');
    const wrong = await request(hub, { path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=nope' });
    assert.is(wrong.status, 401);
    const login = await request(hub, { path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
    assert.is(login.status, 302);
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    assert.match(String(login.headers['set-cookie']), /httponly/i);
    assert.match(String(login.headers['set-cookie']), /samesite=strict/i);
    assert.is((await request(hub, { path: '/', headers: { cookie } })).status, 200);
    assert.equal(await connect(hub), { status: 401 });
    const withCookie = await connect(hub, { headers: { cookie } });
    assert.ok('ws' in withCookie);
    if ('ws' in withCookie) withCookie.ws.close();
    const withProtocol = await connect(hub, {}, ['hub', `hub-token.${TOKEN}`]);
    assert.ok('ws' in withProtocol);
    if ('ws' in withProtocol) {
      assert.is(withProtocol.ws.protocol, 'hub', 'the token is not echoed as the chosen subprotocol');
      withProtocol.ws.close();
    }
    assert.not.ok(hub.output().includes(TOKEN), 'the token never appears in the server log');
  } finally {
    await hub.stop();
  }
});

test('Host: only exact loopback literals pass on a loopback hub; look-alike names are 403 on HTTP and on the WebSocket handshake', async () => {
  const hub = await startHub({ pipelines, env: { HUB_TOKEN: TOKEN, HUB_ALLOWED_HOSTS: 'hub.internal' } });
  const port = new URL(hub.url).port;
  const auth = { authorization: `Bearer ${TOKEN}` };
  try {
    for (const host of ['127.evil.example', `127.evil.example:${port}`, 'localhost.evil.example', '127.0.0.1.evil.example', 'evil.localhost.example', '127.1.2', '0x7f.0.0.1', '[::1].evil.example', 'evil.example']) {
      const http = await request(hub, { path: '/api/projects', headers: { host, ...auth } });
      assert.ok([400, 403].includes(http.status), `HTTP ${host}: ${http.status}`);
      const ws = await connect(hub, { headers: { host, ...auth } });
      assert.ok('status' in ws && [400, 403].includes(ws.status), `WebSocket ${host}: ${JSON.stringify('status' in ws ? ws.status : 'open')}`);
    }
    assert.is((await request(hub, { path: '/api/projects', headers: { host: 'localhost.evil.example', ...auth } })).status, 403);
    for (const host of ['localhost', `localhost:${port}`, `127.0.0.1:${port}`, '127.3.4.5', `[::1]:${port}`, 'LOCALHOST', 'hub.internal', `hub.internal:${port}`]) {
      assert.is((await request(hub, { path: '/api/projects', headers: { host, ...auth } })).status, 200, `HTTP ${host}`);
      const ws = await connect(hub, { headers: { host, ...auth } });
      assert.ok('ws' in ws, `WebSocket ${host}`);
      if ('ws' in ws) ws.ws.close();
    }
  } finally {
    await hub.stop();
  }
});

test('malformed cookies, Authorization values and subprotocol lists are refused with 400 or 401, never 500, and the server stays up', async () => {
  const hub = await startHub({ pipelines, env: { HUB_TOKEN: TOKEN } });
  try {
    const bad: Record<string, string>[] = [
      { cookie: 'hub_token=%E0%A4%A' },
      { cookie: 'hub_token=%' },
      { cookie: `a=%ZZ; hub_token=%E0%A4%A; b=${TOKEN}` },
      { authorization: 'Bearer' },
      { authorization: 'Bearer \t' },
      { authorization: 'Basic Zm9vOmJhcg==' },
      { authorization: `Bearer ${'x'.repeat(8000)}` },
      { 'sec-websocket-protocol': 'hub-token.' },
      { 'sec-websocket-protocol': ',,,hub-token.%E0' },
    ];
    for (const headers of bad) {
      const http = await request(hub, { path: '/api/projects', headers });
      assert.ok([400, 401].includes(http.status), `HTTP ${JSON.stringify(headers).slice(0, 80)}: ${http.status}`);
      const ws = await connect(hub, { headers });
      assert.ok('status' in ws && [400, 401].includes(ws.status), `WebSocket ${JSON.stringify(headers).slice(0, 80)}: ${JSON.stringify('status' in ws ? ws.status : 'open')}`);
    }
    // ws itself refuses a subprotocol list that is not a list of tokens: still not a crash.
    const raw = await connect(hub, { headers: { authorization: `Bearer ${TOKEN}`, 'sec-websocket-protocol': 'hub, hub' } });
    assert.ok('status' in raw && raw.status === 400, JSON.stringify(raw));
    assert.is(hub.process.exitCode, null, 'the server is still running');
    assert.is((await hub.api('GET', '/api/projects', undefined, { authorization: `Bearer ${TOKEN}` })).status, 200);
  } finally {
    await hub.stop();
  }
});

test('limits: run creation rate per project, WebSocket connections per address', async () => {
  const hub = await startHub({ pipelines, env: { HUB_RUNS_PER_MINUTE: '3', HUB_WS_MAX_CONNECTIONS_PER_ADDRESS: '3' } });
  try {
    const projectId = await createProject(hub, 'p');
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).status);
    assert.equal(statuses, [201, 201, 201, 429]);
    const limited = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' });
    assert.is(limited.body.error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    const sockets = await Promise.all([connect(hub), connect(hub), connect(hub)]);
    assert.equal(await connect(hub), { status: 429 });
    for (const s of sockets) if ('ws' in s) s.ws.close();
  } finally {
    await hub.stop();
  }
});

test('paths: ids that are not numbers never reach the file system', async () => {
  const hub = await startHub({ pipelines });
  try {
    for (const path of ['/api/projects/1/runs/..%2F..%2Fetc%2Fpasswd/logs/raw', '/api/projects/..%2F1/runs/1/logs', '/api/projects/1/runs/1e3/logs/raw', '/../../etc/passwd', '/app.js/../../package.json']) {
      const { status } = await request(hub, { path });
      assert.ok([400, 404].includes(status), `${path}: ${status}`);
    }
  } finally {
    await hub.stop();
  }
});

test.run();
