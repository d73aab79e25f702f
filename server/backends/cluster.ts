import fs from 'node:fs';
import path from 'node:path';
import type pino from 'pino';
import type { Config } from '../config.js';
import { archiveKey, archiveTimesKey, openArchive } from '../logs/archive.js';
import { ArchiveSweeper } from '../logs/archiveSweeper.js';
import { createRedisClient } from '../logs/redisClient.js';
import { ClusterLogSource } from '../logs/clusterLogSource.js';
import { deleteChunks, readChunkMark } from '../logs/liveChunks.js';
import { closeNotices, deleteStream, fenceStream, shippedSize } from '../logs/redisLogStream.js';
import { SectionCache } from '../sections/sectionCache.js';
import { SectionIndex } from '../sections/sectionIndex.js';
import type { RunRow } from '../store/runs.js';
import { ClusterLauncher } from '../runs/clusterLauncher.js';
import { toRunJson } from '../runs/serialize.js';
import { isTerminal } from '../store/runs.js';
import type { PgListener } from '../store/postgres/listener.js';
import { notifyRemoved, notifyRun, RUNS_CHANNEL } from '../store/postgres/notify.js';
import { RunFeed } from '../store/postgres/runFeed.js';
import { openPostgresStore, postgresTimeouts } from '../store/postgres/store.js';
import type { Backend } from './backend.js';
import { WorkQueue } from './workQueue.js';

/** Purged runs whose logs are removed at once (each: a notice, two archive deletes, a Redis DEL). */
const PURGES_AT_ONCE = 16;

/**
 * A hub of a cluster: workers carry runs out and ship their logs to Redis streams; this hub records
 * and serves. Every change, this hub's or a worker's, goes through one PostgreSQL channel; what was
 * said while the LISTEN connection was away is read again when it is back (and every few seconds).
 */
export async function openClusterBackend(config: Config, log: pino.Logger): Promise<Backend> {
  fs.mkdirSync(config.logsDir, { recursive: true }); // a hub's own files (none for runs: those are on the workers)
  const postgres = await openPostgresStore(config.databaseUrl!, postgresTimeouts(config));
  const redis = createRedisClient(config);
  redis.on('error', () => {}); // reconnects on its own; reads fail past their deadline meanwhile and are tried again
  const archive = await openArchive(config);
  // Finished logs left only in their streams (a worker died before archiving): one hub at a time archives them.
  const sweeper = new ArchiveSweeper({
    redis,
    runs: postgres.runs,
    archive,
    runExclusive: (key, work) => postgres.runExclusive(key, work),
    changed: (run) => notifyRun(postgres, run.id),
    log,
  }, config.archiveSweepMs);
  const purges = new WorkQueue(PURGES_AT_ONCE);
  // (a finished run's log is read whole or not at all: see ClusterLogSource.open)
  const logSourceOf = (run: RunRow) => new ClusterLogSource(redis, run.id, archive, archiveKey(run.project_id, run.id), archiveTimesKey(run.project_id, run.id), isTerminal(run.status) ? run.log_size : 0);
  let feed: RunFeed | null = null;
  let listener: PgListener | null = null;
  return {
    store: postgres,
    // Runs stay pending for workers to claim; a worker given up has its stream fenced at the new epoch,
    // and its run's log archived at once (else it is only in Redis until a sweep).
    createLauncher: (events) => new ClusterLauncher(postgres.cluster, events, config.workerTimeoutMs, log, (runId, epoch) => fenceStream(redis, runId, epoch), (runId) => sweeper.archiveSoon(runId)),
    // A run's log ends where its stream does: a lost worker's run ends at what it shipped.
    // (never less than its worker last recorded, which the stream held then: a Redis that lost the
    // stream meanwhile makes the log unavailable, not a shorter one)
    logSizeOf: async (run) => Math.max(await shippedSize(redis, run.id), run.log_size),
    logSourceOf,
    // A running run's size as its worker recorded it (its file is on the worker).
    runJson: (run) => toRunJson(run, config.logsDir, false),
    // Logs are in Redis and the archive: section files go in a bounded folder of this hub's own,
    // and a running run is indexed once a client asks (each hub sees every run of the cluster).
    createSections: (changed, latest) => {
      const cache = SectionCache.open(path.join(config.logsDir, 'sections'), config.sectionCacheRuns);
      return new SectionIndex({
        filesOf: (run) => cache.filesOf(run.id),
        sourceOf: (run) => logSourceOf(run),
        changed,
        cache,
        onDemand: true,
        latest,
      });
    },
    connectRunChanges(service, to) {
      service.on('run', (run) => notifyRun(postgres, run.id));
      const runFeed = new RunFeed(postgres.runs, to, config.resyncMs, log);
      feed = runFeed;
      listener = postgres.listen(RUNS_CHANNEL, { notice: (payload) => runFeed.notice(payload), connected: () => runFeed.resync() });
    },
    // The log is in the archive (or still in its stream): it goes too, after the notice is sent, so
    // followers on other hubs mostly hear of the removal before a read finds the log gone (the two
    // still race by a moment: such a reader gets log_reset instead). A few at a time: a retention
    // batch removes a thousand runs.
    purgeLog: (run, reason) => purges.run(async () => {
      await notifyRemoved(postgres, run.project_id, run.id, reason);
      const chunks = await readChunkMark(redis, run.id); // before the stream (and its record of chunks) goes
      await Promise.all([archive.delete(archiveKey(run.project_id, run.id)), archive.delete(archiveTimesKey(run.project_id, run.id)), deleteStream(redis, run.id)]);
      await deleteChunks(archive, run.id, chunks);
    }),
    purgesSettled: () => purges.idle(),
    readyChecks: () => ({
      database: () => postgres.ping(),
      redis: async () => {
        await redis.ping();
      },
      listen: () => listener?.ping() ?? Promise.reject(new Error('no LISTEN connection')),
      archive: () => archive.check(),
    }),
    start: () => sweeper.start(),
    async stop() {
      await sweeper.close();
      feed?.close();
      await listener?.close();
    },
    async close() {
      closeNotices(redis);
      redis.disconnect();
      await postgres.close();
    },
  };
}
