import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { postgresBin, startLocalPostgres, type LocalPostgresOptions } from '../../server/cluster/postgres.js';
import { freePort } from '../../server/cluster/services.js';

export { freePort, postgresBin };

export interface TestPostgres {
  /** the app role's URL (role and database `hub`, password in it) */
  url: string;
  /** the superuser's connection, for what a test must set up or look at as an administrator */
  admin: pg.ClientConfig;
  /** a new database, the app role owning its schema `hub`: its URL (the app role's) */
  createDatabase(): Promise<string>;
  /** sends `signal` to every PostgreSQL process (the postmaster first, then each of its descendants): SIGSTOP freezes the server, SIGCONT resumes it */
  signal(signal: NodeJS.Signals): void;
  /** a fast shutdown (every connection dropped), then the server again on the same port and data */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `root` and every process under it, parents before children (from /proc: Linux). */
function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found = [root];
  for (let i = 0; i < found.length; i++) found.push(...(children.get(found[i]) ?? []));
  return found;
}

/** A PostgreSQL server of its own for a test, secured as the launcher's: a new cluster in a temp dir, a free port, fsync off. */
export async function startPostgres(options: Omit<LocalPostgresOptions, 'fsync'> = {}): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-pg-'));
  let server = await startLocalPostgres(dir, { ...options, fsync: false });
  const port = Number(new URL(server.url).port);
  let databases = 0;
  return {
    url: server.url,
    admin: server.admin,
    createDatabase: () => server.createDatabase(`hub_test_${++databases}`),
    signal: (signal) => {
      // Each backend is a session of its own (setsid): signalled one by one, found by parent pid.
      for (const pid of descendantsOf(server.process.pid!)) process.kill(pid, signal);
    },
    async restart() {
      await server.stop();
      server = await startLocalPostgres(dir, { ...options, fsync: false, port });
    },
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
