import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { projectRoot } from '../../server/paths.js';
import { createProject, nodeStep, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { startCli } from '../helpers/cli.js';
import { setUp } from '../helpers/setup.js';

async function cli(hub: { url: string }, args: string[], env: Record<string, string> = {}) {
  const running = startCli(hub, args, env);
  const code = await Promise.race([running.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`run-hub ${args.join(' ')} did not end in 30 s:\n${running.stderr()}`)), 30_000))]);
  return { code, stdout: running.stdout(), text: running.stdout().toString(), stderr: running.stderr() };
}

const waitForOutput = (process: { stderr: () => string; child: ChildProcess }, text: string) => waitFor(() => process.stderr().includes(text), `"${text}" on the CLI's stderr`);

// Bytes the WebSocket's lines cannot carry as they are: \r\n, a lone \r, bytes that are not UTF-8,
// a character split across writes, no newline at the end.
const AWKWARD = nodeStep(`
  const out = (b) => new Promise((r) => process.stdout.write(b, r));
  (async () => {
    await out('crlf line\\r\\nprogress 50%\\rprogress 100%\\n');
    await out(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x0a]));
    const snow = Buffer.from('split ☃ character\\n');
    await out(snow.subarray(0, 7)); await new Promise((r) => setTimeout(r, 50)); await out(snow.subarray(7));
    for (let i = 1; i <= 2000; i++) await out('line ' + i + ' é日😀\\n');
    await out('no newline at the end');
  })();`);

const PIPELINES = {
  awkward: { steps: [{ name: 'write', command: AWKWARD }], scopes: { all: 'write' } },
  failing: { steps: [{ name: 'ok', command: ['sh', '-c', 'echo fine'] }, { name: 'bad', command: ['sh', '-c', 'echo about to fail; exit 3'] }], scopes: { all: 'ok' } },
  crashing: { steps: [{ name: 'segv', command: ['sh', '-c', 'echo crashing; kill -SEGV $$'] }], scopes: { all: 'segv' } },
  paced: { steps: [{ name: 'tick', command: nodeStep(`let i = 0; const t = setInterval(() => { console.log('tick ' + (++i)); if (i === 150) clearInterval(t); }, 20);`) }], scopes: { all: 'tick' } },
  long: { steps: [{ name: 'wait', command: ['sh', '-c', 'echo waiting; sleep 60'] }], scopes: { all: 'wait' } },
  stepped: { steps: [{ name: 'one', command: ['sh', '-c', 'sleep 0.8; echo one'] }, { name: 'two', command: ['sh', '-c', 'echo two; sleep 0.8; exit 3'] }], scopes: { all: 'one' } },
};

const tests = suite<{ hub: TestHub }>('run-hub CLI');
setUp(tests, async (context) => {
  context.hub = await startHub({ pipelines: PIPELINES });
});
tests.after(async ({ hub }) => hub?.stop());

const rawOf = async (hub: TestHub, run: { project_id: number; id: number }) =>
  Buffer.from(await (await fetch(`${hub.url}/api/projects/${run.project_id}/runs/${run.id}/logs/raw`)).arrayBuffer());

tests('run --follow writes the log byte for byte (\\r\\n, bad UTF-8, split characters) and exits 0; logs RUN equals GET …/logs/raw', async ({ hub }) => {
  const projectId = await createProject(hub, 'awkward');
  const project = (await hub.api('GET', `/api/projects/${projectId}`)).body;
  const followed = await cli(hub, ['run', project.name, '--follow']);
  assert.is(followed.code, 0, followed.stderr);
  const run = (await hub.api('GET', `/api/projects/${projectId}/runs`)).body[0];
  assert.is(run.status, 'completed');
  const raw = await rawOf(hub, run);
  assert.ok(followed.stdout.equals(raw), `stdout (${followed.stdout.length} bytes) equals the raw log (${raw.length})`);
  assert.ok(raw.includes(Buffer.from('crlf line\r\n')) && raw.includes(Buffer.from([0xff, 0xfe])), 'the awkward bytes are there');
  assert.match(followed.stderr, `run #${run.id} completed`);
  const logs = await cli(hub, ['logs', String(run.id)]);
  assert.ok(logs.stdout.equals(raw));
  const tail = await cli(hub, ['logs', String(run.id), '--tail', '2']);
  assert.ok(raw.subarray(raw.length - tail.stdout.length).equals(tail.stdout), 'the tail is the end of the file');
  assert.is(tail.text.split('\n').filter(Boolean).length, 2);
  const offset = await cli(hub, ['logs', String(run.id), '--offset', '5']);
  assert.ok(offset.stdout.equals(raw.subarray(5)));
});

tests('logs -t puts each line after the time it was written, as the hub\'s pages give it; logs -f -t follows a run so', async ({ hub }) => {
  const stamped = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (.*)$/;
  const awkward = await createProject(hub, 'awkward');
  const { body: first } = await hub.api('POST', `/api/projects/${awkward}/runs`, { scope: 'all' });
  await waitForRun(hub, awkward, first.id, ['completed']);
  const page = (await hub.api('GET', `/api/projects/${awkward}/runs/${first.id}/logs?offset=0&timestamps=1`)).body;
  const shown = await cli(hub, ['logs', String(first.id), '-t']);
  assert.is(shown.code, 0, shown.stderr);
  assert.is(shown.text, page.lines.map((line: string, i: number) => `${new Date(page.times[i]).toISOString()} ${line}\n`).join(''));

  const paced = await createProject(hub, 'paced');
  const { body: second } = await hub.api('POST', `/api/projects/${paced}/runs`, { scope: 'all' });
  const followed = await cli(hub, ['logs', String(second.id), '-f', '-t']);
  assert.is(followed.code, 0, followed.stderr);
  const lines = followed.text.trimEnd().split('\n').map((line) => stamped.exec(line));
  assert.ok(lines.every(Boolean), 'every line has its time');
  assert.equal(lines.map((m) => m![2]).filter((line) => line.startsWith('tick')), Array.from({ length: 150 }, (_, i) => `tick ${i + 1}`), 'every line once, in order');
  const times = lines.map((m) => Date.parse(m![1]));
  assert.ok(times.every((time, i) => i === 0 || time >= times[i - 1]), 'times do not go back');
  assert.ok(times.at(-1)! - times[0] >= 2000, `150 ticks 20 ms apart take 3 s (${times.at(-1)! - times[0]} ms)`);
});

tests('run --follow exits with the outcome: the failing step\'s code, 128 + signal; --json and plain listings', async ({ hub }) => {
  const failing = await createProject(hub, 'failing');
  const failed = await cli(hub, ['run', String(failing), '--follow']);
  assert.is(failed.code, 3, failed.stderr);
  assert.match(failed.text, 'about to fail');
  assert.match(failed.stderr, 'Step "bad" exited with code 3');
  const crashing = await createProject(hub, 'crashing');
  const crashed = await cli(hub, ['run', String(crashing), '--follow']);
  assert.is(crashed.code, 128 + 11, crashed.stderr);

  const projects = await cli(hub, ['projects', '--json']);
  const listed = JSON.parse(projects.text) as { id: number; active_run: unknown }[];
  assert.ok(listed.some((p) => p.id === failing));
  const status = await cli(hub, ['status', String(failing), '--json']);
  assert.is(JSON.parse(status.text).runs[0].status, 'failed');
  assert.match((await cli(hub, ['status'])).text, /LATEST RUN/);
  // Re-run from the step that failed.
  const again = await cli(hub, ['run', String(failing), '--from-step', 'bad']);
  assert.is(again.code, 0);
  const run = await waitForRun(hub, failing, Number(again.text), ['failed']);
  assert.is(run.scope, 'from:bad');
});

tests('logs -f resumes across a server restart: the copy is the whole log, once', async ({ hub }) => {
  const projectId = await createProject(hub, 'paced');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const follower = startCli(hub, ['logs', String(run.id), '-f']);
  await waitFor(() => follower.stdout().includes('tick 20\n'), 'the first lines through the CLI');
  const port = new URL(hub.url).port;
  await hub.stop('SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const restarted = await startHub({ pipelines: PIPELINES, dir: hub.dir, env: { PORT: port } });
  try {
    const code = await follower.exited;
    assert.is(code, 0, follower.stderr());
    assert.match(follower.stderr(), 'connection to the hub lost');
    const raw = await rawOf(restarted, run);
    assert.ok(follower.stdout().equals(raw), 'byte for byte, nothing twice');
    assert.match(raw.toString(), 'tick 150\n');
  } finally {
    // the suite's hub is the restarted one from here on
    Object.assign(hub, restarted);
  }
});

tests('Ctrl-C detaches and says how to re-attach; with --cancel-on-interrupt it cancels the run (exit 130)', async ({ hub }) => {
  const projectId = await createProject(hub, 'long');
  const detaching = startCli(hub, ['run', String(projectId), '--follow']);
  await waitFor(() => detaching.stdout().includes('waiting'), 'the step on stdout');
  detaching.child.kill('SIGINT');
  assert.is(await detaching.exited, 130);
  assert.match(detaching.stderr(), /Re-attach: run-hub logs \d+ -f --offset \d+/);
  const run = (await hub.api('GET', `/api/projects/${projectId}/runs/current`)).body;
  assert.is(run.status, 'running', 'the run goes on');
  await hub.api('DELETE', `/api/projects/${projectId}/runs/${run.id}`);
  await waitForRun(hub, projectId, run.id, ['cancelled']);

  const cancelling = startCli(hub, ['run', String(projectId), '--follow', '--cancel-on-interrupt']);
  await waitFor(() => cancelling.stdout().includes('waiting'), 'the step on stdout');
  cancelling.child.kill('SIGINT');
  await waitForOutput(cancelling, 'cancelling run');
  assert.is(await cancelling.exited, 130);
  assert.match(cancelling.stderr(), 'cancelled');
  const cancelled = (await hub.api('GET', `/api/projects/${projectId}/runs`)).body[0];
  assert.is(cancelled.status, 'cancelled');
});

tests('cancel RUN; bad usage exits 2, an unknown project or a refused start exits 1 with the hub\'s message', async ({ hub }) => {
  const projectId = await createProject(hub, 'long');
  const started = await cli(hub, ['run', String(projectId)]);
  const runId = Number(started.text);
  assert.ok(runId > 0, started.text);
  const busy = await cli(hub, ['run', String(projectId)]);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, 'already has an active run');
  const cancelled = await cli(hub, ['cancel', String(runId)]);
  assert.is(cancelled.code, 0, cancelled.stderr);
  await waitForRun(hub, projectId, runId, ['cancelled']);
  assert.is((await cli(hub, ['cancel', String(runId)])).code, 1, 'a finished run');
  assert.is((await cli(hub, ['frobnicate'])).code, 2);
  assert.is((await cli(hub, ['logs', 'seven'])).code, 2);
  assert.is((await cli(hub, ['run', String(projectId), '--scope', 'all', '--from-step', 'wait'])).code, 2);
  const unknown = await cli(hub, ['run', 'no such project']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, 'no project with the id or name');
  const closedPort = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
  const unreachable = await cli({ url: `http://127.0.0.1:${closedPort}` }, ['projects']);
  assert.is(unreachable.code, 1);
  assert.match(unreachable.stderr, `cannot reach the hub at http://127.0.0.1:${closedPort}: ECONNREFUSED`);
});

tests('on a terminal, run --follow shows each step as it starts on stderr (through a pseudo-terminal from util-linux script)', async ({ hub }) => {
  const projectId = await createProject(hub, 'stepped');
  const command = [process.execPath, path.join(projectRoot, 'bin/run-hub.js'), 'run', String(projectId), '--follow'].map((part) => `'${part}'`).join(' ');
  const terminal = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, HUB_URL: hub.url, HUB_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  terminal.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => terminal.once('exit', resolve));
  assert.is(code, 3, output);
  assert.match(output, /▸ step 2\/2: two/, JSON.stringify(output));
});

tests('with HUB_TOKEN set on the hub, the CLI needs it (from the environment or --token), for HTTP and WebSocket', async () => {
  const token = 'cli-test-token-0123456789';
  const locked = await startHub({ pipelines: PIPELINES, env: { HUB_TOKEN: token } });
  try {
    const refused = await cli(locked, ['projects']);
    assert.is(refused.code, 1);
    const docRoot = fs.mkdtempSync(path.join(locked.dir, 'docs-'));
    await locked.api('POST', '/api/projects', { name: 'locked', doc_root: docRoot, pipeline: 'awkward' }, { authorization: `Bearer ${token}` });
    const listed = await cli(locked, ['projects', '--json'], { HUB_TOKEN: token });
    assert.is(listed.code, 0, listed.stderr);
    const projectId = (JSON.parse(listed.text) as { id: number; name: string }[]).find((p) => p.name === 'locked')!.id;
    const followed = await cli(locked, ['run', String(projectId), '--follow', '--token', token]);
    assert.is(followed.code, 0, followed.stderr);
    assert.ok(followed.stdout.length > 0);
  } finally {
    await locked.stop();
  }
});

tests.run();
