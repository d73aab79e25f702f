import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalRedis, type LocalRedisOptions } from '../../server/cluster/redis.js';
import { freePort, type LocalServer } from '../../server/cluster/services.js';

export interface TestRedis {
  /** with the password (and rediss:// with TLS) */
  url: string;
  /** SIGKILL and start again on the same port and data (append-only file): a Redis restart; `empty`: its data deleted first (a Redis that lost everything) */
  restart(options?: { empty?: boolean }): Promise<void>;
  /** sends a signal to the server (SIGSTOP: it stops answering, connections stay open; SIGCONT) */
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** A redis-server of its own for a test, secured as the launcher's: temp dir, free loopback port, AOF on, a password. */
export async function startRedis(options: Omit<LocalRedisOptions, 'port'> = {}): Promise<TestRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-redis-'));
  const port = await freePort();
  let server: LocalServer = await startLocalRedis(dir, { ...options, port });
  return {
    url: server.url,
    async restart({ empty = false } = {}) {
      const exited = new Promise((resolve) => server.process.once('exit', resolve));
      server.process.kill('SIGKILL');
      await exited;
      // The append-only file (a folder in Redis 7, a file before) and any snapshot; the password stays.
      if (empty) for (const name of fs.readdirSync(dir)) if (/^(appendonly|dump\.rdb)/.test(name)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      server = await startLocalRedis(dir, { ...options, port });
    },
    signal(signal) {
      server.process.kill(signal);
    },
    async stop() {
      server.process.kill('SIGCONT');
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
