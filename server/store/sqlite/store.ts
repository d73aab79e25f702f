import type { Store } from '../store.js';
import { openDb } from './db.js';
import { SqliteProjectStore } from './projects.js';
import { SqliteRetentionStore } from './retention.js';
import { SqliteRunStore } from './runs.js';
import { SqliteWebhookStore } from './webhooks.js';
import { SqliteSecretStore } from './secrets.js';

/** The embedded store: one SQLite file (WAL), migrated on open. */
export async function openSqliteStore(file: string): Promise<Store> {
  const db = await openDb(file);
  return { projects: new SqliteProjectStore(db), runs: new SqliteRunStore(db), webhooks: new SqliteWebhookStore(db), secrets: new SqliteSecretStore(db), retention: new SqliteRetentionStore(db), ping: async () => {
    await db.get('SELECT 1');
  }, close: () => db.close() };
}
