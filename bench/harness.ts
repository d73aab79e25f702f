import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { startHub, waitFor, type TestHub } from '../test/helpers/hub.js';
import { Collector } from './collector.js';
import type { Histogram } from './histogram.js';

export const writerScript = new URL('./writer.js', import.meta.url).pathname;

export const BENCH_ENV = { HUB_DEMO: '0', HUB_MAX_LOG_BYTES: String(4 * 1024 ** 3), HUB_WS_MAX_CONNECTIONS_PER_ADDRESS: '5000', HUB_RUNS_PER_MINUTE: '1000' };
export const BENCH_PIPELINES = {
  bench: { steps: [{ name: 'write', command: [process.execPath, writerScript] }], scopes: { all: 'write' } },
  shell: { steps: [{ name: 'echo', command: ['sh', '-c', 'echo "1 0 first line"'] }], scopes: { all: 'echo' } },
  // Search's worst cases: half the log one line of `a`, half lines of one `a` (a match on every other byte).
  pathological: { steps: [{ name: 'write', command: ['sh', '-c', `{ head -c "$HUB_SETTING_HALF" /dev/zero | tr '\\0' a; echo; yes a | head -c "$HUB_SETTING_HALF"; }`] }], scopes: { all: 'write' } },
};

export function startBenchHub(env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<TestHub> {
  return startHub({ nodeArgs, env: { ...BENCH_ENV, ...env }, pipelines: BENCH_PIPELINES });
}

/** `delayMs`: the run's writer waits this long before its first line (see writer.ts). */
export async function createBenchProject(hub: TestHub, count: number, rate: number, delayMs = 0): Promise<number> {
  const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
  const { body } = await hub.api('POST', '/api/projects', { name: `bench-${Math.random()}`, doc_root: docRoot, pipeline: 'bench', settings: { count: String(count), rate: String(rate), delay_ms: String(delayMs) } });
  return body.id;
}

export async function createShellProject(hub: TestHub): Promise<number> {
  const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
  const { body } = await hub.api('POST', '/api/projects', { name: `shell-${Math.random()}`, doc_root: docRoot, pipeline: 'shell' });
  return body.id;
}

/** Of many clients on one run, one in this many checks every line's sequence number (see Collector). */
export const EVERY_LINE_ONE_IN = 10;

export interface HubClient {
  socket: WebSocket;
  collector: Collector;
  completed: Promise<void>;
}

export async function connectClients(hub: TestHub, count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += 50) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, async () => {
      const socket = new WebSocket(`${hub.url.replace('http', 'ws')}/ws`);
      await new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      return socket;
    }))));
  }
  return sockets;
}

/** Follows one run from offset 0 on an open socket, collecting its lines. */
export function follow(socket: WebSocket, runId: number, histogram: Histogram | null, skipBelow = 0, everyLine = true, timestamps = false): HubClient {
  const collector = new Collector(histogram, skipBelow, everyLine);
  let done!: () => void;
  const completed = new Promise<void>((resolve) => (done = resolve));
  socket.on('message', (data: Buffer) => {
    if (collector.onHubMessage(data, runId) === 'complete') done();
  });
  socket.send(JSON.stringify({ type: 'subscribe', run_id: runId, offset: 0, ...(timestamps && { timestamps: true }) }));
  return { socket, collector, completed };
}

export function serverRss(hub: TestHub): number {
  const status = fs.readFileSync(`/proc/${hub.process.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Linux reports process times in clock ticks of 1/100 s (USER_HZ, `getconf CLK_TCK`). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the server process has used so far. */
export function serverCpuSeconds(hub: TestHub): number {
  // /proc/<pid>/stat: after the command's closing parenthesis, utime and stime are fields 12 and 13.
  const fields = fs.readFileSync(`/proc/${hub.process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

const baselineScript = new URL('./baselineServer.js', import.meta.url).pathname;

/** Runs the writer against the bare baseline server (bench/baselineServer.ts) with `clients` clients. */
export async function runBaseline(clients: number, count: number, rate: number, dir: string, histogram: Histogram, skipBelow = 0): Promise<Collector[]> {
  const file = path.join(dir, `baseline-${Date.now()}-${Math.random()}.log`);
  fs.writeFileSync(file, '');
  const server = spawn(process.execPath, [baselineScript, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => server.stdout!.once('data', (data) => resolve(Number(String(data).trim()))));
  const collectors: Collector[] = [];
  const sockets: WebSocket[] = [];
  for (let i = 0; i < clients; i++) {
    const collector = new Collector(histogram, skipBelow, i % EVERY_LINE_ONE_IN === 0);
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    socket.on('message', (data: Buffer) => collector.onRaw(data));
    await new Promise((resolve) => socket.once('open', resolve));
    collectors.push(collector);
    sockets.push(socket);
  }
  const writer = spawn(process.execPath, [writerScript, String(count), String(rate), file], { stdio: 'ignore' });
  await new Promise((resolve) => writer.once('exit', resolve));
  await waitFor(() => collectors.every((c) => c.expected > count), 'baseline clients to get every line', 30_000).catch(() => undefined);
  for (const socket of sockets) socket.terminate();
  server.kill('SIGTERM');
  fs.rmSync(file, { force: true });
  return collectors;
}
