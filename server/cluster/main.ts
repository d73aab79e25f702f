/**
 * `npm run cluster -- --port 8080 --hubs 2 --workers 2`: a whole cluster on this machine, in the
 * foreground, for a person to try: PostgreSQL and Redis (Debian's packages; data under
 * HUB_DATA_DIR/cluster/, on free loopback ports, each with a generated password kept in a file of
 * mode 0600 there; or the servers HUB_DATABASE_URL and HUB_REDIS_URL name), hubs on the port and the
 * next ones, workers each with a logs folder of their own (as on separate machines). Ctrl-C (or
 * SIGTERM, SIGHUP) stops everything it started, within a deadline; a second one kills at once. Each
 * part runs in a process group of its own, so a Ctrl-C in the terminal reaches only this launcher,
 * which stops the parts in order: hubs and workers first (they still use the servers), then the servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config.js';
import { projectRoot } from '../paths.js';
import { startLocalPostgres } from './postgres.js';
import { killProcess, stopProcess } from './processes.js';
import { startLocalRedis } from './redis.js';
import { SecretBox } from '../secrets/secretBox.js';
import { redactUrl } from './secrets.js';
import type { LocalServer } from './services.js';

/** How long a hub or worker has to stop after SIGTERM before it is killed (theirs is 5 s; a hub with clients drains first, HUB_DRAIN_MS: 5 s). */
const CHILD_GRACE_MS = 8000;

const option = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  const value = index === -1 ? fallback : Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`Expected --${name} to be a whole number, got ${process.argv[index + 1]}`);
  return value;
};

const config = loadConfig({ ...process.env, HUB_DATABASE_URL: undefined, HUB_REDIS_URL: undefined, HUB_REDIS_CA_FILE: undefined, HUB_REDIS_CLUSTER_NODES: undefined });
const port = option('port', 8080);
const hubs = option('hubs', 2);
const workers = option('workers', 2);
const root = path.join(config.dataDir, 'cluster');
const started: LocalServer[] = [];
const children: ChildProcess[] = [];
let stopRequested = false;
let stopping: Promise<void> | null = null;

/** Children first (they use the servers), then the servers; whatever already died is passed over. Once. */
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await Promise.all(children.map((child) => stopProcess(child, { graceMs: CHILD_GRACE_MS })));
    for (const server of [...started].reverse()) await server.stop();
  })();
  return stopping;
}

function killAll(): void {
  for (const child of children) killProcess(child, { group: true });
  for (const server of started) server.kill();
}

function run(name: string, script: string, env: Record<string, string>): void {
  // Detached (a process group of its own): the terminal's Ctrl-C reaches only the launcher, which stops it (stopAll).
  const child = spawn(process.execPath, [path.join(projectRoot, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const prefix = (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).map((line) => `[${name}] ${line}\n`).join('');
  child.stdout!.on('data', (chunk: Buffer) => process.stdout.write(prefix(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(prefix(chunk)));
  child.on('exit', (code, signal) => {
    if (!stopRequested) process.stderr.write(`[${name}] exited (${signal ?? `code ${code}`}); the rest go on\n`);
  });
  children.push(child);
}

async function start(): Promise<void> {
  let databaseUrl = process.env.HUB_DATABASE_URL;
  if (!databaseUrl) {
    const postgres = await startLocalPostgres(path.join(root, 'postgres'), { secretsDir: root });
    started.push(postgres);
    databaseUrl = postgres.url;
  }
  if (stopRequested) return;
  let redisUrl = process.env.HUB_REDIS_URL;
  if (!redisUrl) {
    const redis = await startLocalRedis(path.join(root, 'redis'), { secretsDir: root });
    started.push(redis);
    redisUrl = redis.url;
  }
  if (stopRequested) return;
  // The passwords reach hubs and workers in their environment (readable only by this user); steps never see HUB_* variables.
  const shared = {
    HUB_DATABASE_URL: databaseUrl,
    HUB_REDIS_URL: redisUrl,
    HUB_REDIS_CA_FILE: process.env.HUB_REDIS_URL ? (process.env.HUB_REDIS_CA_FILE ?? '') : '',
    // A Redis Cluster given (with HUB_REDIS_URL); never for the Redis started here.
    HUB_REDIS_CLUSTER_NODES: process.env.HUB_REDIS_URL ? (process.env.HUB_REDIS_CLUSTER_NODES ?? '') : '',
    HUB_ARCHIVE_DIR: config.archiveDir === path.join(config.dataDir, 'archive') ? path.join(root, 'archive') : config.archiveDir,
    // One key for every part (a worker opens what a hub sealed), made here once, before any part could race to make its own.
    HUB_SECRET_KEY_FILE: process.env.HUB_SECRET_KEY_FILE ?? path.join(root, 'secret.key'),
  };
  SecretBox.fromFile(shared.HUB_SECRET_KEY_FILE);
  process.stdout.write(`PostgreSQL  ${redactUrl(databaseUrl)}\nRedis       ${redactUrl(redisUrl)}\n`);
  if (started.length > 0) process.stdout.write(`passwords   ${root}/*.password (mode 0600)\n`);
  process.stdout.write(`archive     ${shared.HUB_ARCHIVE_DIR}\n`);
  for (let i = 0; i < workers; i++) {
    const dir = path.join(root, `worker-${i + 1}`);
    fs.mkdirSync(dir, { recursive: true });
    run(`worker ${i + 1}`, 'dist/server/worker/main.js', { ...shared, HUB_WORKER_ID: `worker-${i + 1}`, HUB_LOGS_DIR: path.join(dir, 'logs'), HUB_DATA_DIR: dir });
  }
  for (let i = 0; i < hubs; i++) {
    const dir = path.join(root, `hub-${i + 1}`);
    fs.mkdirSync(dir, { recursive: true });
    run(`hub ${i + 1}`, 'dist/server/main.js', { ...shared, PORT: String(port + i), HUB_LOGS_DIR: path.join(dir, 'logs'), HUB_DATA_DIR: dir, HUB_DEMO: i === 0 ? (process.env.HUB_DEMO ?? '1') : '0' });
    process.stdout.write(`hub ${i + 1}       http://${config.host}:${port + i}\n`);
  }
}

const startup = start().catch((error: Error) => {
  process.stderr.write(`the cluster could not start: ${error.message}\n`);
  process.exitCode = 1;
  requestStop();
});

function requestStop(): void {
  if (stopRequested) {
    // A second Ctrl-C: no more waiting.
    killAll();
    process.exit(1);
  }
  stopRequested = true;
  process.stdout.write('stopping the cluster\n');
  startup.then(stopAll).then(() => process.exit(), (error: Error) => {
    process.stderr.write(`stopping the cluster failed: ${error.message}\n`);
    killAll();
    process.exit(1);
  });
}

process.on('SIGINT', requestStop);
process.on('SIGTERM', requestStop);
// The parts, in groups of their own, no longer get the terminal's hangup: the launcher passes it on as a stop.
process.on('SIGHUP', requestStop);
