import { createHash } from 'node:crypto';
import http from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startHub, type TestHub } from '../helpers/hub.js';
import { setUp } from '../helpers/setup.js';

const headers = suite<{ hub: TestHub; locked: TestHub }>('security headers');

setUp(headers, async (context) => {
  context.hub = await startHub({ env: { HUB_DEMO: '0' } });
  context.locked = await startHub({ env: { HUB_DEMO: '0', HUB_TOKEN: 'a-token-of-16-chars-or-more' } });
});
headers.after(async ({ hub, locked }) => {
  await hub?.stop();
  await locked?.stop();
});

const policyOf = (response: Response) => {
  const header = response.headers.get('content-security-policy') ?? '';
  return new Map(header.split(';').map((directive) => directive.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
};

headers('every response, the GUI\'s pages and files, the API and its errors, forbids framing and inline scripts', async ({ hub, locked }) => {
  for (const [base, path] of [[hub, '/'], [hub, '/index.html'], [hub, '/app.js'], [hub, '/app.css'], [hub, '/api/health'], [hub, '/api/nothing'], [locked, '/api/health'], [locked, '/login']] as const) {
    const response = await fetch(base.url + path, { redirect: 'manual' });
    await response.arrayBuffer();
    const label = `${path} (${response.status})`;
    assert.is(response.headers.get('x-frame-options'), 'DENY', label);
    assert.is(response.headers.get('x-content-type-options'), 'nosniff', label);
    const policy = policyOf(response);
    assert.equal(policy.get('frame-ancestors'), ["'none'"], label);
    assert.equal(policy.get('script-src'), ["'self'"], label);
    assert.equal(policy.get('default-src'), ["'none'"], label);
    assert.ok(policy.get('connect-src')?.includes(`ws://${new URL(base.url).host}`), label);
    assert.ok(!policy.get('style-src')?.includes("'unsafe-inline'"), label);
  }
});

headers('the sign-in page\'s inline style is allowed by its hash, and nothing else inline', async ({ locked }) => {
  const response = await fetch(`${locked.url}/login`);
  const html = await response.text();
  const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1];
  const hash = `'sha256-${createHash('sha256').update(style).digest('base64')}'`;
  assert.equal(policyOf(response).get('style-src'), ["'self'", hash]);
  assert.not.match(html, /<script/);
});

headers('a Host that is not a plain name is not written into the policy', async ({ hub }) => {
  // Bound to loopback, the Host check refuses such a name (400); the policy must not echo it either way.
  const policy = await new Promise<string>((resolve, reject) => {
    const request = http.get(`${hub.url}/api/health`, { headers: { host: 'localhost:1; script-src *' } }, (response) => {
      response.resume();
      resolve(String(response.headers['content-security-policy']));
    });
    request.once('error', reject);
  });
  assert.match(policy, /frame-ancestors 'none'/);
  assert.not.match(policy, /script-src \*/);
  assert.not.match(policy, /ws:/);
});

headers.run();
