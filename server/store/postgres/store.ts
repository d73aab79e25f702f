import pg from 'pg';
import { postgresMigrationsDir } from '../../paths.js';
import type { Store } from '../store.js';
import { ClusterQueue } from './cluster.js';
import { migrate } from './migrate.js';
import { PostgresProjectStore } from './projects.js';
import { PostgresRetentionStore } from './retention.js';
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
}

/** The cluster's store: PostgreSQL at `url` (HUB_DATABASE_URL), migrated on open. */
export async function openPostgresStore(url: string): Promise<PostgresStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Log sizes and run ids are BIGINT; as numbers, like SQLite's (exact up to 2^53).
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
    retention: new PostgresRetentionStore(pool),
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
    close: () => pool.end(),
  };
}
