import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';

/** Debian's PostgreSQL binaries (apt-get install postgresql), newest version; null if none. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0], 'bin') : null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user Debian's package made. */
const asServerUser = (command: string, args: string[]): [string, string[]] => (process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]);

async function waitUntil(ready: () => Promise<boolean>, what: string, exited: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ready())) {
    if (Date.now() > deadline || exited()) throw new Error(`${what} did not start:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface LocalServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A PostgreSQL server on a free loopback port, its cluster in `dir` (made with trust auth for user `hub` if new). */
export async function startLocalPostgres(dir: string, options: { fsync?: boolean } = {}): Promise<LocalServer> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install -y postgresql');
  fs.mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres', dir]);
  const data = path.join(dir, 'data');
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    try {
      execFileSync(...asServerUser(path.join(bin, 'initdb'), ['-D', data, '-U', 'hub', '-A', 'trust', '-E', 'UTF8', '--no-sync']), { stdio: 'pipe' });
    } catch (error) {
      const hint = process.getuid?.() === 0 ? ` (it runs as the postgres user, which must be able to reach ${dir}: every folder above it needs o+x)` : '';
      throw new Error(`initdb failed${hint}: ${String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim()}`);
    }
  }
  const port = await freePort();
  const [command, args] = asServerUser(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', `fsync=${options.fsync === false ? 'off' : 'on'}`, '-c', 'max_connections=200']);
  const server = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  server.stderr!.on('data', (chunk) => (output += chunk));
  const url = `postgres://hub@127.0.0.1:${port}/postgres`;
  await waitUntil(async () => {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return true;
    } catch {
      await client.end().catch(() => {});
      return false;
    }
  }, 'PostgreSQL', () => server.exitCode !== null, () => output);
  return {
    url,
    process: server,
    async stop() {
      if (server.exitCode !== null || server.signalCode !== null) return;
      const exited = new Promise((resolve) => server.once('exit', resolve));
      // The postmaster's own pid (runuser, when in between, does not pass signals on): fast shutdown.
      process.kill(Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGINT');
      await exited;
    },
  };
}

/** A redis-server on `port` (or a free one), its append-only file in `dir`, never evicting. */
export async function startLocalRedis(dir: string, port?: number): Promise<LocalServer> {
  if (!fs.existsSync('/usr/bin/redis-server')) throw new Error('redis-server is not installed: apt-get install -y redis-server');
  fs.mkdirSync(dir, { recursive: true });
  const chosen = port ?? (await freePort());
  const server = spawn('redis-server', ['--port', String(chosen), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  await waitUntil(async () => {
    const client = new Redis({ port: chosen, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {}); // refused until the server is up
    try {
      await client.connect();
      await client.ping();
      return true;
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }, 'redis-server', () => server.exitCode !== null, () => '');
  return {
    url: `redis://127.0.0.1:${chosen}`,
    process: server,
    async stop() {
      if (server.exitCode !== null || server.signalCode !== null) return;
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    },
  };
}
