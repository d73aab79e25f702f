import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { createProject, shellPipeline, startHub, type TestHub } from '../helpers/hub.js';

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
