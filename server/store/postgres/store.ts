import pg from 'pg';
import type { Config } from '../../config.js';
import { postgresMigrationsDir } from '../../paths.js';
import type { Store } from '../store.js';
import { ClusterQueue } from './cluster.js';
import { PgListener, type ListenerEvents } from './listener.js';
import { migrate } from './migrate.js';
import { PostgresProjectStore } from './projects.js';
import { PostgresRetentionStore } from './retention.js';
import { PostgresRunStore } from './runs.js';
import { PostgresWebhookStore } from './webhooks.js';
import { PostgresSecretStore } from './secrets.js';

const INT8 = 20;

export interface PostgresStore extends Store {
  /** what workers and hubs share beyond runs and projects */
  readonly cluster: ClusterQueue;
  /** a statement of its own (notifications) */
  query(sql: string, values?: unknown[]): Promise<unknown>;
  /** each notification on `channel`, on a connection of its own that comes back when lost (see PgListener) */
  listen(channel: string, events: ListenerEvents): PgListener;
  /** readiness: the pool gives a connection that answers, within the connect timeout */
  ping(): Promise<void>;
  /**
   * Runs `work` holding the advisory lock `key` (a session lock on a connection of its own), so one
   * process of the cluster at a time does it; false, without running it, when another holds it.
   */
  runExclusive(key: number, work: () => Promise<void>): Promise<boolean>;
}

export interface PostgresTimeouts {
  /** taking a connection from the pool (opening one included), and opening the LISTEN connection */
  connectTimeoutMs: number;
  /** a statement the server cancels past this (statement_timeout); the client gives up a second later (a server gone silent) */
  statementTimeoutMs: number;
  /** how often the LISTEN connection is pinged */
  pingMs: number;
}

export const DEFAULT_POSTGRES_TIMEOUTS: PostgresTimeouts = { connectTimeoutMs: 5000, statementTimeoutMs: 30_000, pingMs: 5000 };

/** The deadlines the configuration sets. */
export const postgresTimeouts = (config: Pick<Config, 'dbConnectTimeoutMs' | 'dbStatementTimeoutMs' | 'resyncMs'>): PostgresTimeouts =>
  ({ connectTimeoutMs: config.dbConnectTimeoutMs, statementTimeoutMs: config.dbStatementTimeoutMs, pingMs: config.resyncMs });

/** The cluster's store: PostgreSQL at `url` (HUB_DATABASE_URL), migrated on open. Nothing waits for ever: see PostgresTimeouts. */
export async function openPostgresStore(url: string, timeouts: PostgresTimeouts = DEFAULT_POSTGRES_TIMEOUTS): Promise<PostgresStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    statement_timeout: timeouts.statementTimeoutMs,
    query_timeout: timeouts.statementTimeoutMs + 1000,
    // A connection to a host that went away is found out by the kernel too, not only by the next query.
    keepAlive: true,
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
    secrets: new PostgresSecretStore(pool),
    retention: new PostgresRetentionStore(pool),
    cluster: new ClusterQueue(pool),
    query: (sql, values) => pool.query(sql, values),
    listen: (channel, events) => new PgListener({ connectionString: url }, channel, events, { timeoutMs: timeouts.connectTimeoutMs, pingMs: timeouts.pingMs }),
    async ping() {
      await pool.query('SELECT 1');
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
