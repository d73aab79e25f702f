/**
 * `npm run cluster -- --port 8080 --hubs 2 --workers 2`: a whole cluster on this machine, in the
 * foreground, for a person to try: PostgreSQL and Redis (Debian's packages; data under
 * HUB_DATA_DIR/cluster/, on free loopback ports, or the servers HUB_DATABASE_URL and HUB_REDIS_URL
 * name), hubs on the port and the next ones, workers each with a logs folder of their own (as on
 * separate machines). Ctrl-C stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config.js';
import { projectRoot } from '../paths.js';
import { startLocalPostgres, startLocalRedis, type LocalServer } from './services.js';

const option = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  const value = index === -1 ? fallback : Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`Expected --${name} to be a whole number, got ${process.argv[index + 1]}`);
  return value;
};

const config = loadConfig({ ...process.env, HUB_DATABASE_URL: undefined, HUB_REDIS_URL: undefined });
const port = option('port', 8080);
const hubs = option('hubs', 2);
const workers = option('workers', 2);
const root = path.join(config.dataDir, 'cluster');
const started: LocalServer[] = [];
const children: ChildProcess[] = [];

async function stopAll(): Promise<void> {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : null)));
  for (const server of started.reverse()) await server.stop();
}

function run(name: string, script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [path.join(projectRoot, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).map((line) => `[${name}] ${line}\n`).join('');
  child.stdout!.on('data', (chunk: Buffer) => process.stdout.write(prefix(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(prefix(chunk)));
  children.push(child);
  return child;
}

try {
  let databaseUrl = process.env.HUB_DATABASE_URL;
  if (!databaseUrl) {
    const postgres = await startLocalPostgres(path.join(root, 'postgres'));
    started.push(postgres);
    databaseUrl = postgres.url;
  }
  let redisUrl = process.env.HUB_REDIS_URL;
  if (!redisUrl) {
    const redis = await startLocalRedis(path.join(root, 'redis'));
    started.push(redis);
    redisUrl = redis.url;
  }
  const shared = { HUB_DATABASE_URL: databaseUrl, HUB_REDIS_URL: redisUrl, HUB_ARCHIVE_DIR: config.archiveDir === path.join(config.dataDir, 'archive') ? path.join(root, 'archive') : config.archiveDir };
  process.stdout.write(`PostgreSQL  ${databaseUrl}\nRedis       ${redisUrl}\narchive     ${shared.HUB_ARCHIVE_DIR}\n`);
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
  const shutdown = () => void stopAll().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (error) {
  process.stderr.write(`the cluster could not start: ${(error as Error).message}\n`);
  await stopAll();
  process.exitCode = 1;
}
