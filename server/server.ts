import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Config } from './config.js';
import { seedDemoProject } from './demo.js';
import { createApp } from './http/app.js';
import { Drain } from './http/drain.js';
import { limitWaitingConnections } from './http/waitingConnections.js';
import { LogHub } from './hub/logHub.js';
import { attachWebSocketServer, type HubSocketServer } from './ws/wsServer.js';
import { HubMetrics } from './metrics/hubMetrics.js';
import { loadPipelines } from './pipelines/load.js';
import { LocalLauncher } from './runs/localLauncher.js';
import { RunService } from './runs/service.js';
import { toRunJson } from './runs/serialize.js';
import { LocalLogSource, type LogSource } from './logs/logSource.js';
import { closeNotices, ClusterLogSource, deleteStream, fenceStream, shippedSize } from './logs/redisLogStream.js';
import { archiveKey, archiveTimesKey, openArchive } from './logs/archive.js';
import { ArchiveSweeper } from './logs/archiveSweeper.js';
import { ClusterLauncher } from './runs/clusterLauncher.js';
import { notifyRemoved, notifyRun, RUNS_CHANNEL } from './store/postgres/notify.js';
import { RunFeed } from './store/postgres/runFeed.js';
import type { PgListener } from './store/postgres/listener.js';
import { RetentionSweeper } from './runs/retention.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { isTerminal, type RunRow } from './store/runs.js';
import { createRedisClient } from './logs/redisClient.js';
import { LogWatcher } from './logs/logWatcher.js';
import { runFiles } from './paths.js';
import { openPostgresStore, postgresTimeouts } from './store/postgres/store.js';
import { openSqliteStore } from './store/sqlite/store.js';
import { checkReadiness, checkWritableDir, type ReadyCheck } from './health/readiness.js';
import { SecretBox } from './secrets/secretBox.js';
import { ProjectSecrets } from './secrets/projectSecrets.js';
import { SectionIndex } from './sections/sectionIndex.js';

/** At shutdown, requests still running after this long are cut (the forced exit comes at 5 s). */
const CLOSE_GRACE_MS = 1000;
/** At start, run events this far back are checked for webhook deliveries never recorded. */
const MISSED_EVENTS_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface RunningHub {
  url: string;
  port: number;
  /** Turns not ready at once, then closes WebSocket and SSE clients over HUB_DRAIN_MS (SIGTERM, before close). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Composition: config → pipelines, store, launcher and run service, hub, HTTP, WebSocket; listens, and closes in reverse. */
export async function startHub(config: Config, log = pino({ level: config.logLevel })): Promise<RunningHub> {
  const pipelines = loadPipelines(config.pipelinesFile);
  fs.mkdirSync(config.logsDir, { recursive: true });
  const postgres = config.databaseUrl ? await openPostgresStore(config.databaseUrl, postgresTimeouts(config)) : null;
  const store = postgres ?? (await openSqliteStore(config.dbFile));
  const { projects, runs } = store;
  if (config.seedDemo) await seedDemoProject(projects, pipelines, log);
  // Cluster mode: workers carry out runs and ship logs to Redis; this hub only records and serves.
  const redis = config.redisUrl ? createRedisClient(config) : null;
  redis?.on('error', () => {}); // reconnects on its own; reads fail past their deadline meanwhile and are tried again
  const cluster = postgres && redis ? { postgres, redis } : null;
  const secrets = new ProjectSecrets(store.secrets, SecretBox.fromFile(config.secretKeyFile));
  // In cluster mode a run's log ends where its stream does: a lost worker's run ends at what it shipped.
  const runService = new RunService(config, pipelines, projects, runs, log, (events) =>
    cluster ? new ClusterLauncher(cluster.postgres.cluster, events, config.workerTimeoutMs, log, (runId, epoch) => fenceStream(cluster.redis, runId, epoch)) : new LocalLauncher(config, events, log, undefined, (projectId) => secrets.values(projectId)),
  cluster ? (run) => shippedSize(cluster.redis, run.id) : undefined);
  // Where logs are read from: the local files (one watcher), or each run's Redis stream.
  const watcher = new LogWatcher();
  const archive = await openArchive(config);
  const localSourceOf = (run: RunRow) => {
    const files = runFiles(config.logsDir, run.project_id, run.id);
    return new LocalLogSource(files.log, watcher, files.times);
  };
  const logSourceOf = (run: RunRow): LogSource =>
    cluster ? new ClusterLogSource(cluster.redis, run.id, archive, archiveKey(run.project_id, run.id), archiveTimesKey(run.project_id, run.id)) : localSourceOf(run);
  // A run as clients see it; a running run's size from its file, or (cluster) as its worker recorded it.
  const runJson = (run: RunRow) => toRunJson(run, config.logsDir, !cluster);
  const hub = new LogHub(config, runs, projects, runJson, logSourceOf);
  // Sections are indexed from the local files as they grow, with a watcher of their own (the
  // hub's readers come and go with their subscribers). Not in cluster mode yet.
  const sectionWatcher = cluster ? null : new LogWatcher();
  const sections = sectionWatcher
    ? new SectionIndex({
      filesOf: (run) => {
        const files = runFiles(config.logsDir, run.project_id, run.id);
        return { records: files.sections, names: files.sectionNames };
      },
      sourceOf: (run) => {
        const files = runFiles(config.logsDir, run.project_id, run.id);
        return new LocalLogSource(files.log, sectionWatcher, files.times);
      },
      changed: (runId, changed) => hub.sectionsChanged(runId, changed),
    })
    : null;
  let url = '';
  const webhooks = new WebhookDispatcher(store.webhooks, projects, runJson, { publicUrl: () => config.publicUrl ?? url, retryFirstMs: config.webhookRetryMs, retryMaxMs: config.webhookRetryMaxMs, maxTries: config.webhookTries }, log);
  // Finished runs past their project's limits go at start, hourly, and when one of its runs ends.
  const retention = new RetentionSweeper(config.retention, { projects, store: store.retention, log, removed: (removed) => runService.removed(removed, 'retention') });
  // Every change of a run, this hub's own or (cluster) any hub's or worker's.
  const runChanged = (run: RunRow) => {
    hub.runChanged(run);
    sections?.runChanged(run);
    webhooks.runChanged(run);
    if (isTerminal(run.status)) retention.sweepProject(run.project_id).catch((error: unknown) => log.error({ err: error, project_id: run.project_id }, 'the retention sweep failed'));
  };
  // Finished logs left only in their streams (a worker died before archiving): one hub at a time archives them.
  const sweeper = cluster && new ArchiveSweeper({
    redis: cluster.redis,
    runs,
    archive,
    runExclusive: (key, work) => cluster.postgres.runExclusive(key, work),
    changed: (run) => notifyRun(cluster.postgres, run.id),
    log,
  }, config.archiveSweepMs);
  let feed: RunFeed | null = null;
  let listener: PgListener | null = null;
  if (cluster) {
    // Every change, this hub's or a worker's, reaches every hub through one channel; what was said
    // while this hub's LISTEN connection was away is read again when it is back (and every few seconds).
    runService.on('run', (run) => notifyRun(cluster.postgres, run.id));
    const runFeed = new RunFeed(runs, { changed: runChanged, removed: (projectId, runId, reason) => hub.runRemoved(projectId, runId, reason) }, config.resyncMs, log);
    feed = runFeed;
    listener = cluster.postgres.listen(RUNS_CHANNEL, { notice: (payload) => runFeed.notice(payload), connected: () => runFeed.resync() });
  } else {
    runService.on('run', runChanged);
  }
  runService.on('purged', (run, reason) => {
    sections?.forget(run.id).catch((error: unknown) => log.warn({ err: error, run_id: run.id }, 'stopping a purged run\'s section index failed'));
    if (!cluster) return hub.runRemoved(run.project_id, run.id, reason);
    // In cluster mode a purged run's log is in the archive (or still in its stream): it goes too,
    // after the notice is sent, so followers on other hubs mostly hear of the removal before a read
    // finds the log gone (the two still race by a moment: such a reader gets log_reset instead).
    void notifyRemoved(cluster.postgres, run.project_id, run.id, reason)
      .then(() => Promise.all([archive.delete(archiveKey(run.project_id, run.id)), archive.delete(archiveTimesKey(run.project_id, run.id)), deleteStream(cluster.redis, run.id)]))
      .catch((error: unknown) => log.warn({ err: error, run_id: run.id }, 'removing a purged log failed'));
  });
  // The WebSocket server is attached after the app exists; the metrics read it through this.
  let sockets: HubSocketServer | null = null;
  const metrics = new HubMetrics({
    runsByStatus: () => runs.countByStatus(),
    sockets: () => ({ connections: sockets?.connectionCount ?? 0 }),
    subscriptions: () => hub.subscriptionStats(),
  });
  const drain = new Drain();
  // What a load balancer polls: every part this hub needs answers now.
  const checks: Record<string, ReadyCheck> = cluster
    ? {
        database: () => store.ping(),
        redis: async () => {
          await cluster.redis.ping();
        },
        listen: () => listener?.ping() ?? Promise.reject(new Error('no LISTEN connection')),
        archive: () => archive.check(),
      }
    : { database: () => store.ping(), logs: () => checkWritableDir(config.logsDir) };
  // A hub that drains (SIGTERM) is not ready from the first moment: the balancer sends nobody new.
  checks.serving = async () => {
    if (drain.draining) throw new Error('draining: this hub is stopping');
  };
  const readiness = () => checkReadiness(checks, config.readyTimeoutMs);
  const app = createApp({ config, log, pipelines, projects, runs, runService, hub, logSourceOf, runJson, metrics, webhooks: store.webhooks, webhookDispatcher: webhooks, readiness, drain, secrets, sections });
  const handleRequest = app.callback();
  // Deadlines for receiving a request, head and body; a response (a log stream) lasts as long as it needs.
  // Checked every second (Node's default is 30 s, so a deadline could be missed by that much).
  const server = http.createServer({
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.ceil(config.headersTimeoutMs / 2)),
  }, (request, response) => {
    // Koa answers its own errors (ctx.onerror), so this is for a fault in that path itself.
    handleRequest(request, response).catch((error: unknown) => log.error({ err: error }, 'a request failed outside the error middleware'));
  });
  limitWaitingConnections(server, config.maxWaitingConnections);
  // Longer than clients' own keep-alive (undici: 4 s), so the client always closes an idle socket
  // first and never reuses one the server is closing (ECONNRESET under load).
  server.keepAliveTimeout = 65_000;
  sockets = attachWebSocketServer(server, hub, config, log, metrics.countSent);
  await runService.recover();
  // Not awaited: a long first sweep must not hold up serving.
  retention.start().catch((error: unknown) => log.error({ err: error }, 'the first retention sweep failed'));
  sweeper?.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  // Events a killed hub never recorded, then deliveries left pending (both log their own failures).
  webhooks.recoverMissed(runs, MISSED_EVENTS_WINDOW_MS)
    .then(() => webhooks.takeOverDue())
    .catch((error: unknown) => log.error({ err: error }, 'looking for webhook deliveries to make or take over failed'));
  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  return {
    url,
    port,
    drain() {
      draining ??= (async () => {
        drain.begin();
        log.info({ clients: sockets?.connectionCount ?? 0, drain_ms: config.drainMs }, 'draining: closing clients a few at a time');
        await Promise.all([sockets?.drain(config.drainMs), drain.closeStreams(config.drainMs)]);
      })();
      return draining;
    },
    close() {
      closing ??= (async () => {
        await retention.close();
        await sweeper?.close();
        webhooks.close();
        const launcherClosed = runService.close();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // A connection still mid-request a moment on (a slow or stalled client, one that sent nothing) is cut, not waited for.
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        await sockets?.close();
        feed?.close();
        await listener?.close();
        await hub.close();
        await sections?.close();
        await sectionWatcher?.close();
        await watcher.close();
        if (redis) {
          closeNotices(redis);
          redis.disconnect();
        }
        await stopped;
        clearTimeout(cut);
        await launcherClosed;
        await store.close();
      })();
      return closing;
    },
  };
}
