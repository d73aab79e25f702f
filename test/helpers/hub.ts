import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../server/paths.js';
import { checkResponse } from './openapi.js';
import { watchForRejection } from './rejections.js';

export interface TestHub {
  url: string;
  dir: string;
  process: ChildProcess;
  output: () => string;
  api: (method: string, urlPath: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; headers: Headers }>;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export interface HubOptions {
  /** pipelines file content; the `pipelines` key is added around it */
  pipelines?: Record<string, unknown>;
  env?: Record<string, string>;
  /** reuse the data and logs of an earlier hub (a restart) */
  dir?: string;
  /** node flags for the server process (e.g. --cpu-prof, which NODE_OPTIONS does not allow) */
  nodeArgs?: string[];
  /** the server's open-file limit (soft and hard), set through prlimit: descriptors run out at this many */
  fileLimit?: number;
  /** how the process is started: here, or on another machine (a network namespace: test/helpers/netns.ts) */
  spawnOn?: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
}

/** Starts the real server (`node dist/server/main.js`) on an ephemeral port with its files in a temp dir. */
export async function startHub(options: HubOptions = {}): Promise<TestHub> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hub-test-'));
  const pipelinesFile = path.join(dir, 'pipelines.json');
  if (options.pipelines) fs.writeFileSync(pipelinesFile, JSON.stringify({ pipelines: options.pipelines }));
  const command = [process.execPath, ...(options.nodeArgs ?? []), path.join(projectRoot, 'dist/server/main.js')];
  if (options.fileLimit !== undefined) command.unshift('prlimit', `--nofile=${options.fileLimit}:${options.fileLimit}`, '--');
  const child = (options.spawnOn ?? spawn)(command[0], command.slice(1), {
    cwd: dir,
    env: {
      ...process.env,
      PORT: '0',
      HUB_DATA_DIR: path.join(dir, 'data'),
      HUB_LOGS_DIR: path.join(dir, 'logs'),
      HUB_CANCEL_GRACE_MS: '1000',
      HUB_DEMO_DELAY_MS: '0',
      ...(options.pipelines && { HUB_PIPELINES: pipelinesFile }),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  watchForRejection(child, 'the hub', () => output);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start within 15 s:\n${output}`)), 15_000);
    const onData = () => {
      const match = /listening on (http:\/\/[^"\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code} before listening:\n${output}`));
    });
  });
  const api: TestHub['api'] = async (method, urlPath, body, headers = {}) => {
    const response = await fetch(url + urlPath, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // plain text
    }
    checkResponse(method, url + urlPath, response.status, response.headers.get('content-type'), parsed);
    return { status: response.status, body: parsed, headers: response.headers };
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  return { url, dir, process: child, output: () => output, api, stop };
}

/** Polls until `check` returns a truthy value; fails with `message` after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T> | T, message: string, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message} (last: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export const sh = (script: string) => ['sh', '-c', script];
export const nodeStep = (code: string) => [process.execPath, '-e', code];

/** A step writing `count - 1` one-line GitHub groups (g1, g2, …), then one named "Final group": a log of many sections. */
export const groupsStep = (count: number) =>
  nodeStep(`const out = []; for (let i = 1; i < ${count}; i++) out.push('::group::g' + i + '\\nline ' + i + '\\n::endgroup::\\n'); out.push('::group::Final group\\nfinal line\\n::endgroup::\\n'); process.stdout.write(out.join(''))`);

/** A pipeline of `sh -c` steps, all in one scope `all` (and one scope per step). */
export function shellPipeline(steps: Record<string, string>, extra: Record<string, unknown> = {}) {
  const names = Object.keys(steps);
  return {
    steps: names.map((name) => ({ name, command: sh(steps[name]), ...(extra[name] as object) })),
    scopes: { all: names[0], ...Object.fromEntries(names.map((name) => [`from_${name}`, name])) },
  };
}

/** Creates a project on a fresh doc root; returns its id. */
export async function createProject(hub: TestHub, pipeline: string, name = `p${Math.random().toString(36).slice(2)}`): Promise<number> {
  const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
  const response = await hub.api('POST', '/api/projects', { name, doc_root: docRoot, pipeline, settings: { llm_model: 'test-model' } });
  if (response.status !== 201) throw new Error(`project not created: ${JSON.stringify(response.body)}`);
  return response.body.id;
}

export async function waitForRun(hub: TestHub, projectId: number, runId: number, statuses: string[], timeoutMs = 15_000) {
  return waitFor(async () => {
    const { body } = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}`);
    return statuses.includes(body.status) ? body : null;
  }, `run ${runId} to be ${statuses.join('/')}`, timeoutMs);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** How many of a process's open file descriptors point at `file` (Linux /proc). */
export function openHandles(pid: number, file: string): number {
  let count = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

/** The log file of a run in a test hub's logs folder. */
export const logFileOf = (hub: TestHub, projectId: number, runId: number) => path.join(hub.dir, 'logs', String(projectId), `${runId}.log`);
