import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../server/cluster/services.js';
import { hasExited, waitForExit } from '../../server/cluster/processes.js';
import { projectRoot } from '../../server/paths.js';
import { waitFor } from '../helpers/hub.js';

/** A process's parent and state from /proc/PID/stat; null once it is gone. */
function statOf(pid: number): { ppid: number; state: string } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(ppid), state };
  } catch {
    return null;
  }
}

/** Running (not a zombie waiting to be reaped). */
const isRunning = (pid: number) => ![null, 'Z', 'X'].includes(statOf(pid)?.state ?? null);

const commandOf = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
};

/** Every process below `root`, with its command line. */
function descendantsOf(root: number): Map<number, string> {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    const stat = statOf(Number(name));
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(name)]);
  }
  const found = new Map<number, string>();
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      found.set(child, commandOf(child));
      visit(child);
    }
  };
  visit(root);
  return found;
}

interface Launcher {
  process: ChildProcess;
  output: () => string;
}

/**
 * `npm run cluster -- --port P --hubs 1 --workers 1` as its own process, once its hub answers and its
 * worker started; `detached`: in a process group of its own, as a shell starts a foreground job.
 */
async function startLauncher(dataDir: string, port: number, { detached = false } = {}): Promise<Launcher> {
  const env: NodeJS.ProcessEnv = { ...process.env, HUB_DATA_DIR: dataDir, HUB_DEMO: '0' };
  delete env.HUB_DATABASE_URL;
  delete env.HUB_REDIS_URL;
  const child = spawn(process.execPath, [path.join(projectRoot, 'dist/server/cluster/main.js'), '--port', String(port), '--hubs', '1', '--workers', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await waitFor(() => /\[worker 1\].*started/.test(output) || hasExited(child), 'the worker to start', 40_000);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/api/projects`)).ok, `hub 1 to answer:\n${output}`, 20_000);
  return { process: child, output: () => output };
}

/** A temp HUB_DATA_DIR the postgres user can pass through. */
function makeDataDir(): string {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-launcher-'));
  fs.chmodSync(dataDir, 0o755);
  return dataDir;
}

/**
 * The launcher's stop deadline (server/cluster/main.ts, docs/cluster.md): hubs and workers 8 s, then
 * SIGKILL and up to 5 s; Redis 10 + 5 s; PostgreSQL 15 + 5 s. Plus a margin for a loaded machine.
 */
const STOP_DEADLINE_MS = 8000 + 5000 + 10_000 + 5000 + 15_000 + 5000 + 10_000;

/** Waits until every process in `started` is gone, or fails naming those left. */
/** Whatever a failed test left: the launcher and every part it started, killed; its folder, gone. */
function cleanUp(launcher: ChildProcess | undefined, started: Map<number, string>, dataDir: string): void {
  if (launcher && !hasExited(launcher)) launcher.kill('SIGKILL');
  for (const pid of started.keys()) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
}

async function assertAllGone(started: Map<number, string>): Promise<void> {
  await waitFor(() => [...started.keys()].every((pid) => !isRunning(pid)), 'every process it started to be gone', 5000).catch(() => {
    assert.unreachable(`left running: ${[...started].filter(([pid]) => isRunning(pid)).map(([pid, command]) => `${pid} ${command}`).join('\n')}`);
  });
}

/** The processes of a launcher: every part of the cluster must be among them. */
function partsOf(launcher: ChildProcess): Map<number, string> {
  const started = descendantsOf(launcher.pid!);
  for (const [what, pattern] of [['a hub', /dist\/server\/main\.js/], ['a worker', /dist\/server\/worker\/main\.js/], ['postgres', /bin\/postgres /], ['redis-server', /redis-server/]] as const) {
    assert.ok([...started.values()].some((command) => pattern.test(command)), `${what} among ${[...started.values()].join('\n')}`);
  }
  return started;
}

const passwordsIn = (dataDir: string) => ['postgres-admin', 'postgres', 'redis'].map((name) => fs.readFileSync(path.join(dataDir, 'cluster', `${name}.password`), 'utf8').trim());

test('npm run cluster: after a hub died of SIGKILL, SIGTERM stops the launcher within its deadline and leaves no postgres, redis-server, hub or worker running; no password is printed', async () => {
  const dataDir = makeDataDir();
  const port = await freePort();
  let launcher: ChildProcess | undefined;
  let started = new Map<number, string>();
  try {
    const running = await startLauncher(dataDir, port);
    launcher = running.process;
    const output = running.output;
    started = partsOf(launcher);
    const [hub] = [...started].filter(([, command]) => /dist\/server\/main\.js/.test(command)).map(([pid]) => pid);

    process.kill(hub, 'SIGKILL');
    await waitFor(() => /\[hub 1\] exited \(SIGKILL\)/.test(output()), 'the launcher to see the hub die');
    const stopAt = Date.now();
    launcher.kill('SIGTERM');
    assert.ok(await waitForExit(launcher, STOP_DEADLINE_MS), `the launcher did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM:\n${output()}`);
    console.log(`launcher stopped in ${Date.now() - stopAt} ms`);
    assert.is(launcher.exitCode, 0, output());
    await assertAllGone(started);

    for (const secret of passwordsIn(dataDir)) assert.not.ok(output().includes(secret), 'a password was printed');
    assert.match(output(), /PostgreSQL {2}postgres:\/\/hub:\*\*\*@127\.0\.0\.1/);
  } finally {
    cleanUp(launcher, started, dataDir);
  }
});

test('npm run cluster: a second SIGINT kills at once, and leaves no postgres (the postmaster behind runuser too), redis-server, hub or worker running', async () => {
  const dataDir = makeDataDir();
  const port = await freePort();
  let launcher: ChildProcess | undefined;
  let started = new Map<number, string>();
  try {
    const running = await startLauncher(dataDir, port);
    launcher = running.process;
    started = partsOf(launcher);
    launcher.kill('SIGINT');
    await waitFor(() => /stopping the cluster/.test(running.output()), 'the launcher to start stopping');
    launcher.kill('SIGINT');
    assert.ok(await waitForExit(launcher, 5000), `the launcher did not exit at once on a second SIGINT:\n${running.output()}`);
    assert.is(launcher.exitCode, 1);
    await assertAllGone(started);
  } finally {
    cleanUp(launcher, started, dataDir);
  }
});

test("npm run cluster: a Ctrl-C (SIGINT to the terminal's whole process group) reaches only the launcher, which stops hubs and workers while PostgreSQL and Redis still run, then the servers", async () => {
  const dataDir = makeDataDir();
  const port = await freePort();
  let launcher: ChildProcess | undefined;
  let started = new Map<number, string>();
  try {
    const running = await startLauncher(dataDir, port, { detached: true });
    launcher = running.process;
    started = partsOf(launcher);
    const pids = (pattern: RegExp) => [...started].filter(([, command]) => pattern.test(command)).map(([pid]) => pid);
    const children = [...pids(/dist\/server\/main\.js/), ...pids(/dist\/server\/worker\/main\.js/)];
    const servers = [...pids(/bin\/postgres /), ...pids(/redis-server/)];
    // Watches, every few ms, that no server is gone before every hub and worker is.
    let early: string | null = null;
    const watch = setInterval(() => {
      const serverGone = servers.find((pid) => !isRunning(pid));
      if (serverGone !== undefined && children.some(isRunning)) early ??= `${started.get(serverGone)} was gone while ${children.filter(isRunning).map((pid) => started.get(pid)).join(', ')} still ran`;
    }, 2);
    process.kill(-launcher.pid!, 'SIGINT');
    const exited = await waitForExit(launcher, STOP_DEADLINE_MS);
    clearInterval(watch);
    assert.ok(exited, `the launcher did not exit within ${STOP_DEADLINE_MS} ms of a Ctrl-C:\n${running.output()}`);
    assert.is(launcher.exitCode, 0, running.output());
    assert.is(early, null, `${early}\n${running.output()}`);
    // They stopped on the launcher's SIGTERM, not on the terminal's SIGINT.
    for (const part of ['hub 1', 'worker 1']) {
      assert.match(running.output(), new RegExp(`\\[${part}\\].*"signal":"SIGTERM"`), running.output());
      assert.not.match(running.output(), new RegExp(`\\[${part}\\].*"signal":"SIGINT"`), running.output());
    }
    assert.not.match(running.output(), /terminating connection|Connection is closed|ECONNREFUSED|exited \(/, running.output());
    await assertAllGone(started);
  } finally {
    cleanUp(launcher, started, dataDir);
  }
});

test('npm run cluster started again on its folder finds its passwords and its records: the servers take the same passwords, the parts the same secrets key, the project made before is there', async () => {
  const dataDir = makeDataDir();
  const port = await freePort();
  let launcher: Launcher | undefined;
  try {
    launcher = await startLauncher(dataDir, port);
    const docRoot = fs.mkdtempSync(path.join(dataDir, 'docs-'));
    const created = await fetch(`http://127.0.0.1:${port}/api/projects`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kept', doc_root: docRoot, pipeline: 'glossary', settings: { llm_model: 'test-model' } }) });
    assert.is(created.status, 201, await created.clone().text());
    const passwords = passwordsIn(dataDir);
    // One secrets key for every part (a worker must open what a hub sealed), made by the launcher, 0600.
    const keyFile = path.join(dataDir, 'cluster', 'secret.key');
    assert.is(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(fs.readdirSync(path.join(dataDir, 'cluster'), { recursive: true }).map(String).filter((name) => name.endsWith('secret.key')), ['secret.key'], 'no part made a key of its own');
    const key = fs.readFileSync(keyFile);
    launcher.process.kill('SIGTERM');
    assert.ok(await waitForExit(launcher.process, 20_000), 'the first launcher did not stop');
    launcher = await startLauncher(dataDir, port);
    assert.equal(passwordsIn(dataDir), passwords);
    assert.ok(fs.readFileSync(keyFile).equals(key), 'the same secrets key');
    const projects = (await (await fetch(`http://127.0.0.1:${port}/api/projects`)).json()) as { name: string }[];
    assert.ok(projects.some((project) => project.name === 'kept'), JSON.stringify(projects));
  } finally {
    if (launcher && !hasExited(launcher.process)) {
      launcher.process.kill('SIGTERM');
      if (!(await waitForExit(launcher.process, 20_000))) launcher.process.kill('SIGKILL');
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
