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
  stop(): Promise<void>;
}

/** A PostgreSQL server of its own for a test, secured as the launcher's: a new cluster in a temp dir, a free port, fsync off. */
export async function startPostgres(options: Omit<LocalPostgresOptions, 'fsync'> = {}): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-pg-'));
  const server = await startLocalPostgres(dir, { ...options, fsync: false });
  let databases = 0;
  return {
    url: server.url,
    admin: server.admin,
    createDatabase: () => server.createDatabase(`hub_test_${++databases}`),
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
