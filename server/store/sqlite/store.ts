import type { Store } from '../store.js';
import { openDb } from './db.js';
import { SqliteProjectStore } from './projects.js';
import { SqliteRunStore } from './runs.js';

/** The embedded store: one SQLite file (WAL), migrated on open. */
export async function openSqliteStore(file: string): Promise<Store> {
  const db = await openDb(file);
  return { projects: new SqliteProjectStore(db), runs: new SqliteRunStore(db), close: () => db.close() };
}
