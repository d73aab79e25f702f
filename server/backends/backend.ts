import type pino from 'pino';
import type { Config } from '../config.js';
import type { ReadyCheck } from '../health/readiness.js';
import type { LogSource } from '../logs/logSource.js';
import type { Launcher, LauncherEvents } from '../runs/launcher.js';
import type { RunService } from '../runs/service.js';
import type { LogSizeOf } from '../runs/settle.js';
import type { SectionIndex } from '../sections/sectionIndex.js';
import type { RunRow } from '../store/runs.js';
import type { Store } from '../store/store.js';
import type { RemovalReason, Run, Section } from '../wire.js';

/** Where every change of a run goes: this hub's own and, in a cluster, every other hub's and worker's. */
export interface RunChangeHandlers {
  changed(run: RunRow): void;
  removed(projectId: number, runId: number, reason: RemovalReason): void;
}

/**
 * What a mode is, behind one seam: the embedded hub (SQLite, runners on this machine, log files) or
 * a cluster member (PostgreSQL, workers, Redis streams, an archive). The composition root
 * (server.ts) builds the rest on it and never asks which it has; reconnects, resyncs and fencing
 * live in the cluster's implementation.
 */
export interface Backend {
  readonly store: Store;
  /** carries runs out: runners here, or (cluster) the queue workers claim from */
  createLauncher(events: LauncherEvents, secretsOf: (projectId: number) => Promise<Record<string, string>>): Launcher;
  /** how long a run's log is when its end is recorded here (default: its file on this machine) */
  readonly logSizeOf?: LogSizeOf;
  /** where a run's log is read from */
  logSourceOf(run: RunRow): LogSource;
  /** a run as clients see it */
  runJson(run: RunRow): Run;
  /** the index of sections from markers; `latest`: a run as recorded now */
  createSections(changed: (runId: number, sections: Section[]) => void, latest: (runId: number) => Promise<RunRow | undefined>): SectionIndex;
  /** every change of a run reaches `to`: this hub's own (`service`) and, in a cluster, everyone's */
  connectRunChanges(service: RunService, to: RunChangeHandlers): void;
  /** a purged run's log goes, and its followers on every hub learn it was removed */
  purgeLog(run: RunRow, reason: RemovalReason, to: RunChangeHandlers): Promise<void>;
  /** resolves once the purges asked for so far are done (a retention sweep waits for it between batches) */
  purgesSettled(): Promise<void>;
  /** what readiness checks, by name */
  readyChecks(): Record<string, ReadyCheck>;
  /** background work (the cluster's archive sweep), once serving */
  start(): void;
  /** stops taking in changes and background work (before the hub closes) */
  stop(): Promise<void>;
  /** closes connections and the store (last: after runs given out are handed over) */
  close(): Promise<void>;
}

/** The backend the configuration names: a cluster when it names PostgreSQL and Redis, else embedded. */
export async function openBackend(config: Config, log: pino.Logger): Promise<Backend> {
  if (config.databaseUrl && config.redisUrl) {
    const { openClusterBackend } = await import('./cluster.js');
    return openClusterBackend(config, log);
  }
  const { openEmbeddedBackend } = await import('./embedded.js');
  return openEmbeddedBackend(config, log);
}
