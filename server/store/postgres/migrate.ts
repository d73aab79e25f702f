import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';

/** Any number taken by one lock: hubs starting together migrate one at a time. */
const MIGRATION_LOCK = 7_461_001;
/** Waiting for another hub's migration, and each migration, may take longer than a statement's usual deadline. */
const MIGRATION_TIMEOUT_MS = 10 * 60_000;

/** Applies `NNN-name.sql` files not applied yet, in order, each in a transaction, under an advisory lock. */
export async function migrate(pool: pg.Pool, dir: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(`SET statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    await client.query({ text: 'SELECT pg_advisory_lock($1)', values: [MIGRATION_LOCK], query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    const applied = new Set((await client.query<{ id: number }>('SELECT id FROM schema_migrations')).rows.map((row) => row.id));
    const files = fs.readdirSync(dir).filter((name) => /^\d+-.+\.sql$/.test(name)).sort();
    for (const name of files) {
      const id = Number(name.split('-')[0]);
      if (applied.has(id)) continue;
      await client.query('BEGIN');
      try {
        await client.query({ text: fs.readFileSync(path.join(dir, name), 'utf8'), query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
        await client.query('INSERT INTO schema_migrations (id, name, applied_at) VALUES ($1, $2, $3)', [id, name, new Date().toISOString()]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`PostgreSQL migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    await client.query('RESET statement_timeout').catch(() => {});
    client.release();
  }
}
