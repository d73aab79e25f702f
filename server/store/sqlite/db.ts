import fs from 'node:fs';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { open, type Database } from 'sqlite';
import { sqliteMigrationsDir } from '../../paths.js';

export type Db = Database<sqlite3.Database, sqlite3.Statement>;

/** How long a statement waits for another process's lock before SQLITE_BUSY (answered as 503). */
export const BUSY_TIMEOUT_MS = 5000;

/** Opens the SQLite file (WAL, foreign keys, bounded busy wait) and applies the SQL migrations. */
export async function openDb(file: string): Promise<Db> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = await open({ filename: file, driver: sqlite3.Database });
  await db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  await db.exec('PRAGMA journal_mode = WAL');
  await db.exec('PRAGMA foreign_keys = ON');
  await db.migrate({ migrationsPath: sqliteMigrationsDir });
  return db;
}
