import fs from 'node:fs';
import type pino from 'pino';
import type { Config } from '../config.js';
import { checkWritableDir } from '../health/readiness.js';
import { LocalLogSource } from '../logs/logSource.js';
import { LogWatcher } from '../logs/logWatcher.js';
import { runFiles } from '../paths.js';
import { LocalLauncher } from '../runs/localLauncher.js';
import { toRunJson } from '../runs/serialize.js';
import { SectionIndex } from '../sections/sectionIndex.js';
import { openPostgresStore, postgresTimeouts } from '../store/postgres/store.js';
import type { RunRow } from '../store/runs.js';
import { openSqliteStore } from '../store/sqlite/store.js';
import type { Backend } from './backend.js';

/**
 * One hub on one machine: runners started here write log files here, one watcher learns that they
 * grew, and changes of runs are this hub's own. Records in SQLite (or PostgreSQL, without Redis).
 */
export async function openEmbeddedBackend(config: Config, log: pino.Logger): Promise<Backend> {
  fs.mkdirSync(config.logsDir, { recursive: true });
  const store = config.databaseUrl ? await openPostgresStore(config.databaseUrl, postgresTimeouts(config)) : await openSqliteStore(config.dbFile);
  const watcher = new LogWatcher();
  // Sections are indexed with a watcher of their own (the hub's readers come and go with their subscribers).
  const sectionWatcher = new LogWatcher();
  const sourceOf = (run: RunRow, withWatcher: LogWatcher) => {
    const files = runFiles(config.logsDir, run.project_id, run.id);
    return new LocalLogSource(files.log, withWatcher, files.times);
  };
  return {
    store,
    createLauncher: (events, secretsOf) => new LocalLauncher(config, events, log, undefined, secretsOf),
    logSourceOf: (run) => sourceOf(run, watcher),
    // A running run's size from its file, which is on this machine.
    runJson: (run) => toRunJson(run, config.logsDir, true),
    createSections: (changed) => new SectionIndex({
      filesOf: (run) => {
        const files = runFiles(config.logsDir, run.project_id, run.id);
        return { records: files.sections, names: files.sectionNames };
      },
      sourceOf: (run) => sourceOf(run, sectionWatcher),
      changed,
    }),
    connectRunChanges: (service, to) => service.on('run', (run) => to.changed(run)),
    purgeLog: async (run, reason, to) => to.removed(run.project_id, run.id, reason), // the run service removed its files
    purgesSettled: async () => {},
    readyChecks: () => ({ database: () => store.ping(), logs: () => checkWritableDir(config.logsDir) }),
    start: () => {},
    stop: async () => {},
    close: async () => {
      await sectionWatcher.close();
      await watcher.close();
      await store.close();
    },
  };
}
