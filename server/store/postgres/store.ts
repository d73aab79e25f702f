import pg from 'pg';
import { postgresMigrationsDir } from '../../paths.js';
import type { Store } from '../store.js';
import { ClusterQueue } from './cluster.js';
import { migrate } from './migrate.js';
import { PostgresProjectStore } from './projects.js';
import { PostgresRunStore } from './runs.js';
import { PostgresWebhookStore } from './webhooks.js';

const INT8 = 20;

export interface PostgresStore extends Store {
  /** what workers and hubs share beyond runs and projects */
  readonly cluster: ClusterQueue;
  /** a statement of its own (notifications) */
  query(sql: string, values?: unknown[]): Promise<unknown>;
  /** calls `listener` with each notification on `channel`, on a connection of its own; returns how to stop */
  listen(channel: string, listener: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Runs `work` holding the advisory lock `key` (a session lock on a connection of its own), so one
   * process of the cluster at a time does it; false, without running it, when another holds it.
   */
  runExclusive(key: number, work: () => Promise<void>): Promise<boolean>;
}

/** The cluster's store: PostgreSQL at `url` (HUB_DATABASE_URL), migrated on open. */
export async function openPostgresStore(url: string): Promise<PostgresStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Log sizes are BIGINT; as numbers, like SQLite's (exact up to 2^53 bytes).
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  });
  pool.on('error', () => {}); // an idle client that lost its connection is replaced; queries report their own errors
  try {
    await migrate(pool, postgresMigrationsDir);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    projects: new PostgresProjectStore(pool),
    runs: new PostgresRunStore(pool),
    webhooks: new PostgresWebhookStore(pool),
    cluster: new ClusterQueue(pool),
    query: (sql, values) => pool.query(sql, values),
    async listen(channel, listener) {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {}); // a lost connection: the pollers behind notifications go on
      await client.connect();
      client.on('notification', (message) => {
        if (message.channel === channel) listener(message.payload ?? '');
      });
      await client.query(`LISTEN ${channel}`);
      return () => client.end();
    },
    async runExclusive(key, work) {
      const client = await pool.connect();
      let locked = false;
      try {
        locked = (await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [key])).rows[0].locked;
        if (locked) await work();
        return locked;
      } finally {
        // A connection lost meanwhile took its lock with it: the client is then discarded, not reused.
        const unlocked = locked ? await client.query('SELECT pg_advisory_unlock($1)', [key]).then(() => true, () => false) : true;
        client.release(!unlocked);
      }
    },
    close: () => pool.end(),
  };
}
