import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, postgresBin, startLocalPostgres } from '../../server/cluster/services.js';

export { freePort, postgresBin };

export interface TestPostgres {
  /** the server's admin URL (database `postgres`) */
  url: string;
  /** a new, empty database on it */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** A PostgreSQL server of its own for a test: a new cluster in a temp dir, a free port, fsync off. */
export async function startPostgres(): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-pg-'));
  const server = await startLocalPostgres(dir, { fsync: false });
  let databases = 0;
  return {
    url: server.url,
    async createDatabase() {
      const name = `hub_test_${++databases}`;
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      return server.url.replace(/\/postgres$/, `/${name}`);
    },
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
