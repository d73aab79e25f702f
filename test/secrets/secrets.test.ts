import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAlive, nodeStep, startHub, waitFor, type TestHub } from '../helpers/hub.js';
import { failTestsOnRejection } from '../helpers/rejections.js';
import { TestClient } from '../helpers/wsClient.js';

failTestsOnRejection(test);

const TOKEN = 'secrets-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
/** Regex metacharacters and a multi-byte character, as real keys rarely have but must still be masked. */
const SECRET = 'sk-live.4f$9*(x)ü+Q';
const ADDED = 'runtime-token-77aa';
/** What a project without secrets masks with `::add-mask::`. */
const ADDED_PLAIN = 'hunter2-token';
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** The glossary demo's style: an LLM call fails and its error echoes the request, headers and all. */
const leaky = nodeStep(`
  const key = process.env.API_KEY;
  console.log('key sha256 ' + require('node:crypto').createHash('sha256').update(key).digest('hex'));
  console.log('hub token visible: ' + ('HUB_TOKEN' in process.env) + ', key file visible: ' + ('HUB_SECRET_KEY_FILE' in process.env));
  console.log('debug: calling the model with ' + key);
  console.error('LLM request failed: 401 ' + JSON.stringify({ url: 'https://llm.example/v1?key=' + encodeURIComponent(key), headers: { authorization: 'Bearer ' + key } }));
  console.log('basic ' + Buffer.from('user:' + key).toString('base64') + ' b64 ' + Buffer.from(key).toString('base64'));
  console.log('::add-mask::${ADDED}');
  console.log('added: ${ADDED}');
  process.stdout.write('split: ' + key.slice(0, 5));
  setTimeout(() => { process.stdout.write(key.slice(5) + ' done\\n'); require('node:fs').writeFileSync(process.env.HUB_ERROR_FILE, 'auth failed for ' + key); process.exitCode = 1; }, 5);
`);

const counting = nodeStep(`(async () => { for (let i = 1; i <= 80; i++) { console.log('line ' + i + ' ' + process.env.API_KEY); await new Promise(r => setTimeout(r, 20)); } })()`);

const pipelines = {
  leaky: { steps: [{ name: 'call_llm', command: leaky }], scopes: { all: 'call_llm' } },
  counting: { steps: [{ name: 'count', command: counting }], scopes: { all: 'count' } },
  fill: { steps: [{ name: 'fill', command: ['sh', '-c', "echo filling; yes \"fill the disk with $API_KEY\""] }], scopes: { all: 'fill' } },
  // No secret: the value it masks comes only from its own ::add-mask:: line, written in two parts.
  adding: { steps: [{ name: 'add', command: nodeStep(`
    console.log('before: ${ADDED_PLAIN.slice(0, 4)}');
    process.stdout.write('::add-mask::hunter2');
    setTimeout(() => { console.log('${ADDED_PLAIN.slice(7)}'); console.log('using ${ADDED_PLAIN} as ' + Buffer.from('${ADDED_PLAIN}').toString('base64')); }, 50);
  `) }], scopes: { all: 'add' } },
  sleeping: { steps: [{ name: 'sleep', command: nodeStep(`require('node:fs').writeFileSync(process.env.HUB_OUTPUT_DIR + '/pid', String(process.pid)); setInterval(() => {}, 1000)`) }], scopes: { all: 'sleep' } },
};

async function projectWithSecret(hub: TestHub, pipeline: string): Promise<number> {
  const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
  const created = await hub.api('POST', '/api/projects', { name: `p-${pipeline}-${Date.now()}`, doc_root: docRoot, pipeline }, auth);
  assert.is(created.status, 201, JSON.stringify(created.body));
  const put = await hub.api('PUT', `/api/projects/${created.body.id}/secrets/API_KEY`, { value: SECRET }, auth);
  assert.is(put.status, 201, JSON.stringify(put.body));
  return created.body.id;
}

const waitForEnd = (hub: TestHub, projectId: number, runId: number, timeoutMs = 15_000) => waitFor(async () => {
  const { body } = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}`, undefined, auth);
  return ['completed', 'failed', 'cancelled'].includes(body.status) ? body : null;
}, `run ${runId} to end`, timeoutMs);

/** Every form the test's steps print the secret in. */
const forms = [SECRET, ADDED, encodeURIComponent(SECRET), JSON.stringify(SECRET).slice(1, -1), Buffer.from(SECRET).toString('base64'), Buffer.from(`user:${SECRET}`).toString('base64')];
function assertNoSecret(text: string, where: string) {
  for (const form of forms) assert.not.ok(text.includes(form), `${where} holds the secret as ${JSON.stringify(form)}`);
}

test('a step printing its secret (raw, JSON, URL-encoded, base64, split across writes, ::add-mask::) shows [MASKED] in the file, over HTTP, WebSocket, search and raw; the step has the secret and not HUB_TOKEN', async () => {
  const hub = await startHub({ pipelines, env: { HUB_TOKEN: TOKEN } });
  try {
    const projectId = await projectWithSecret(hub, 'leaky');
    const client = await TestClient.connect(hub.url, { protocol: undefined, headers: auth });
    const { body: started } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' }, auth);
    client.send({ type: 'subscribe', run_id: started.id, offset: 0 });
    const run = await waitForEnd(hub, projectId, started.id);
    assert.is(run.status, 'failed');
    assert.match(run.error_message, /auth failed for \[MASKED\]/, 'the step\'s reason for failing is masked too');

    const file = fs.readFileSync(path.join(hub.dir, 'logs', run.log_path), 'utf8');
    assert.ok(file.includes(`key sha256 ${sha(SECRET)}`), 'the step got the secret as API_KEY');
    assert.ok(file.includes('hub token visible: false, key file visible: false'), 'and none of the hub\'s own settings');
    assert.ok(file.includes('debug: calling the model with [MASKED]'), file);
    assert.ok(file.includes('"authorization":"Bearer [MASKED]"'), file);
    assert.ok(file.includes('?key=[MASKED]'), file);
    // "user:" + key in base64: the key's part (at its alignment) masked; the 2 bits its last character shares with padding stay
    assert.ok(file.includes('basic dXNlcjp[MASKED]Q== b64 [MASKED]\n'), file);
    assert.ok(file.includes('::add-mask::[MASKED]\nadded: [MASKED]\n'), file);
    assert.ok(file.includes('split: [MASKED] done'), file);
    assertNoSecret(file, 'the log file');

    const complete = await client.complete(started.id);
    assert.is(complete.status, 'failed');
    const streamed = client.linesOf(started.id, 0).lines.join('\n');
    assert.ok(streamed.includes('debug: calling the model with [MASKED]'));
    assertNoSecret(streamed, 'the WebSocket stream');
    await client.close();

    const page = await hub.api('GET', `/api/projects/${projectId}/runs/${started.id}/logs?offset=0`, undefined, auth);
    assertNoSecret(JSON.stringify(page.body), 'the HTTP log page');
    assert.ok(page.body.lines.includes('debug: calling the model with [MASKED]'));
    const raw = await hub.api('GET', `/api/projects/${projectId}/runs/${started.id}/logs/raw`, undefined, auth);
    assert.is(raw.body, file);
    for (const q of [SECRET, SECRET.slice(0, 8), ADDED]) {
      const search = await hub.api('GET', `/api/projects/${projectId}/runs/${started.id}/logs/search?q=${encodeURIComponent(q)}`, undefined, auth);
      assert.equal(search.body.matches, [], `search for ${q} finds nothing`);
    }
    const masked = await hub.api('GET', `/api/projects/${projectId}/runs/${started.id}/logs/search?q=${encodeURIComponent('[MASKED]')}`, undefined, auth);
    assert.ok(masked.body.matches.length >= 6);

    const runJson = await hub.api('GET', `/api/projects/${projectId}/runs/${started.id}`, undefined, auth);
    assertNoSecret(JSON.stringify(runJson.body), 'the run');
    assertNoSecret(hub.output(), 'the server\'s own log');
  } finally {
    await hub.stop();
  }
});

test('a project without secrets: a step\'s ::add-mask:: line masks its value from then on, in the file and over HTTP', async () => {
  const hub = await startHub({ pipelines, env: { HUB_TOKEN: TOKEN } });
  try {
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
    const created = await hub.api('POST', '/api/projects', { name: 'no-secrets', doc_root: docRoot, pipeline: 'adding' }, auth);
    assert.is(created.status, 201, JSON.stringify(created.body));
    assert.equal((await hub.api('GET', `/api/projects/${created.body.id}/secrets`, undefined, auth)).body, [], 'the project has no secret');
    const { body: started } = await hub.api('POST', `/api/projects/${created.body.id}/runs`, { scope: 'all' }, auth);
    const run = await waitForEnd(hub, created.body.id, started.id);
    assert.is(run.status, 'completed', run.error_message);
    const file = fs.readFileSync(path.join(hub.dir, 'logs', run.log_path), 'utf8');
    assert.ok(file.includes(`before: hunt\n::add-mask::[MASKED]\nusing [MASKED] as [MASKED]\n`), file);
    assert.not.ok(file.includes(ADDED_PLAIN), 'the log file never holds the value');
    assert.not.ok(file.includes(Buffer.from(ADDED_PLAIN).toString('base64')), 'nor its base64');
    const page = await hub.api('GET', `/api/projects/${created.body.id}/runs/${started.id}/logs?offset=0`, undefined, auth);
    assert.is(page.status, 200);
    assert.ok(page.body.lines.includes('using [MASKED] as [MASKED]'), JSON.stringify(page.body.lines));
    assert.not.ok(JSON.stringify(page.body).includes(ADDED_PLAIN), 'the HTTP log page never holds the value');
    const raw = await hub.api('GET', `/api/projects/${created.body.id}/runs/${started.id}/logs/raw`, undefined, auth);
    assert.is(raw.body, file);
  } finally {
    await hub.stop();
  }
});

test('the secrets API never returns a value: listing, setting, replacing, refusing (too short, bad JSON, bad name) and deleting', async () => {
  const hub = await startHub({ pipelines });
  try {
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
    const { body: project } = await hub.api('POST', '/api/projects', { name: 'api', doc_root: docRoot, pipeline: 'leaky' });
    const base = `/api/projects/${project.id}/secrets`;
    const answers: unknown[] = [];
    const call = async (method: string, url: string, body?: unknown, headers?: Record<string, string>) => {
      const answer = await hub.api(method, url, body, headers);
      const seen: string[] = [];
      answer.headers.forEach((value, name) => seen.push(`${name}: ${value}`));
      answers.push(answer.body, seen);
      return answer;
    };
    assert.equal((await call('GET', base)).body, []);
    const created = await call('PUT', `${base}/API_KEY`, { value: SECRET });
    assert.is(created.status, 201);
    assert.equal(Object.keys(created.body).sort(), ['name', 'updated_at']);
    assert.is(created.headers.get('cache-control'), 'no-store');
    const replaced = await call('PUT', `${base}/API_KEY`, { value: `${SECRET}-2` });
    assert.is(replaced.status, 200);
    const short = await call('PUT', `${base}/SHORT`, { value: 'abc12' });
    assert.is(short.status, 400);
    assert.is(short.body.error.code, 'secret_too_short');
    assert.match(short.body.error.message, /at least 6 bytes/);
    assert.not.ok(short.body.error.message.includes('abc12'), 'the refused value is not echoed');
    const badJson = await call('PUT', `${base}/API_KEY`, `{"value": "${SECRET}`, { 'content-type': 'application/json' });
    assert.is(badJson.status, 400);
    assert.is(badJson.body.error.code, 'invalid_json');
    const wrongType = await call('PUT', `${base}/API_KEY`, { value: [SECRET] });
    assert.is(wrongType.body.error.code, 'invalid_field');
    const extra = await call('PUT', `${base}/API_KEY`, { value: SECRET, [SECRET]: 1 });
    assert.is(extra.body.error.code, 'unknown_field');
    assert.is((await call('PUT', `${base}/lower_case`, { value: SECRET })).body.error.code, 'invalid_secret_name');
    assert.is((await call('PUT', `${base}/1ABC`, { value: SECRET })).body.error.code, 'invalid_secret_name');
    assert.is((await call('PUT', `${base}/HUB_RUN_TOKEN`, { value: SECRET })).body.error.code, 'reserved_secret_name');
    assert.is((await call('PUT', `/api/projects/999/secrets/API_KEY`, { value: SECRET })).status, 404);
    const listed = await call('GET', base);
    assert.equal(listed.body.map((secret: { name: string }) => secret.name), ['API_KEY']);
    assert.is((await call('GET', `/api/projects/${project.id}`)).status, 200);
    assert.is((await call('DELETE', `${base}/API_KEY`)).status, 204);
    assert.is((await call('DELETE', `${base}/API_KEY`)).status, 404);
    assert.equal((await call('GET', base)).body, []);
    const everything = JSON.stringify(answers) + hub.output();
    assert.not.ok(everything.includes(SECRET) || everything.includes('sk-live'), 'no answer or server log line holds the value');
    // At rest: sealed, under a key file only its owner reads.
    const key = path.join(hub.dir, 'data', 'secret.key');
    assert.is(fs.statSync(key).mode & 0o777, 0o600);
    const database = fs.readFileSync(path.join(hub.dir, 'data', 'hub.sqlite')).toString('latin1') + fs.readFileSync(path.join(hub.dir, 'data', 'hub.sqlite-wal')).toString('latin1');
    assert.not.ok(database.includes('sk-live'), 'the database holds no value in the clear');
  } finally {
    await hub.stop();
  }
});

test('a server killed mid-run of a project with secrets: the runner holds the pipe, keeps masking, and the restarted server re-attaches', async () => {
  const first = await startHub({ pipelines, env: { HUB_TOKEN: TOKEN } });
  const projectId = await projectWithSecret(first, 'counting');
  const { body } = await first.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' }, auth);
  const logFile = path.join(first.dir, 'logs', body.log_path);
  await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('line 10 '), 'the run to be under way');
  await first.stop('SIGKILL');
  const second = await startHub({ pipelines, dir: first.dir, env: { HUB_TOKEN: TOKEN } });
  try {
    const run = await waitForEnd(second, projectId, body.id, 20_000);
    assert.is(run.status, 'completed', run.error_message);
    const text = fs.readFileSync(logFile, 'utf8');
    assertNoSecret(text, 'the log');
    const lines = text.split('\n').filter((line) => line.startsWith('line '));
    assert.equal(lines, Array.from({ length: 80 }, (_, i) => `line ${i + 1} [MASKED]`));
  } finally {
    await second.stop();
  }
});

test('a runner killed mid-step of a project with secrets: its step dies with it and the run ends failed saying so', async () => {
  const hub = await startHub({ pipelines });
  try {
    const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
    const { body: project } = await hub.api('POST', '/api/projects', { name: 'sleepy', doc_root: docRoot, pipeline: 'sleeping' });
    await hub.api('PUT', `/api/projects/${project.id}/secrets/API_KEY`, { value: SECRET });
    const { body } = await hub.api('POST', `/api/projects/${project.id}/runs`, { scope: 'all' });
    const stateFile = path.join(hub.dir, 'logs', String(project.id), `${body.id}.json`);
    const pidFile = path.join(hub.dir, 'data', 'outputs', String(project.id), 'pid');
    const stepPid = Number(await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8'), 'the step to start'));
    const runnerPid = await waitFor(() => fs.existsSync(stateFile) && JSON.parse(fs.readFileSync(stateFile, 'utf8')).pid, 'the runner state');
    process.kill(runnerPid, 'SIGKILL');
    const run = await waitFor(async () => {
      const { body: current } = await hub.api('GET', `/api/projects/${project.id}/runs/${body.id}`);
      return current.status === 'running' ? null : current;
    }, 'the run to end');
    assert.is(run.status, 'failed');
    assert.is(run.error_message, 'The runner was killed by SIGKILL before writing a final state');
    await waitFor(() => !isAlive(stepPid), 'the step to be gone');
  } finally {
    await hub.stop();
  }
});

test('a hub whose key does not open a project\'s secrets fails the run at its start, saying which secret and why, and never starts the steps', async () => {
  const first = await startHub({ pipelines });
  const projectId = await projectWithSecret(first, 'leaky');
  await first.stop();
  const hub = await startHub({ pipelines, dir: first.dir, env: { HUB_SECRET_KEY_FILE: path.join(first.dir, 'other.key') } });
  try {
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const run = await waitForEnd(hub, projectId, body.id);
    assert.is(run.status, 'failed');
    assert.is(run.error_message, `The run could not start: Secret API_KEY of project ${projectId} does not open with this key (is HUB_SECRET_KEY_FILE the same on every hub and worker?)`);
    const log = path.join(hub.dir, 'logs', run.log_path);
    assert.not.ok(fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('key sha256'), 'no step ran');
    assert.is(fs.statSync(path.join(first.dir, 'other.key')).mode & 0o777, 0o600, 'the new key was made 0600');
  } finally {
    await hub.stop();
  }
});

const canMount = process.platform === 'linux' && process.getuid?.() === 0;
(canMount ? test : test.skip)('a step flooding a full disk through the masking pipe: the run fails saying "no space left on device", the runner does not crash, the server serves on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-test-'));
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', logs]);
  const hub = await startHub({ pipelines, dir });
  try {
    const docRoot = fs.mkdtempSync(path.join(dir, 'docs-'));
    const { body: project } = await hub.api('POST', '/api/projects', { name: 'full', doc_root: docRoot, pipeline: 'fill' });
    await hub.api('PUT', `/api/projects/${project.id}/secrets/API_KEY`, { value: SECRET });
    const { body } = await hub.api('POST', `/api/projects/${project.id}/runs`, { scope: 'all' });
    const run = await waitForEnd(hub, project.id, body.id, 20_000);
    assert.is(run.status, 'failed');
    assert.match(run.error_message, /no space left on device/);
    assertNoSecret(fs.readFileSync(path.join(logs, run.log_path), 'utf8'), 'the full log');
    assert.ok(fs.readFileSync(path.join(logs, run.log_path), 'utf8').includes('fill the disk with [MASKED]'));
    assert.is((await hub.api('GET', '/api/health')).status, 200);
  } finally {
    await hub.stop();
    execFileSync('umount', ['-l', logs]);
  }
});

test.run();
