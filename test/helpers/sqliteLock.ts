import sqlite3 from 'sqlite3';

/** Another process's connection to a hub's SQLite file, to hold its locks (`BEGIN EXCLUSIVE`). */
export function sqliteLocker(file: string) {
  const db = new sqlite3.Database(file);
  return {
    exec: (sql: string) => new Promise<void>((resolve, reject) => db.exec(sql, (error) => (error ? reject(error) : resolve()))),
    close: () => db.close(),
  };
}
