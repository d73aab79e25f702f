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
import { RunService } from './runs/service.js';
import { RetentionSweeper } from './runs/retention.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { isTerminal, type RunRow } from './store/runs.js';
import { checkReadiness, type ReadyCheck } from './health/readiness.js';
import { openBackend } from './backends/backend.js';
import type { RemovalReason } from './wire.js';
import { SecretBox } from './secrets/secretBox.js';
import { ProjectSecrets } from './secrets/projectSecrets.js';

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

/**
 * Composition: config → backend (embedded or cluster: see backends/backend.ts), pipelines, run
 * service, hub, HTTP, WebSocket; listens, and closes in reverse. Nothing here asks which mode it is.
 */
export async function startHub(config: Config, log = pino({ level: config.logLevel })): Promise<RunningHub> {
  const pipelines = loadPipelines(config.pipelinesFile);
  const backend = await openBackend(config, log);
  const { store } = backend;
  const { projects, runs } = store;
  if (config.seedDemo) await seedDemoProject(projects, pipelines, log);
  const secrets = new ProjectSecrets(store.secrets, SecretBox.fromFile(config.secretKeyFile));
  const runService = new RunService(config, pipelines, projects, runs, log, (events) => backend.createLauncher(events, (projectId) => secrets.values(projectId)), backend.logSizeOf);
  const { logSourceOf, runJson } = backend;
  // The index tells the hub of changed sections; the hub tells the index who wants them.
  const hub: LogHub = new LogHub(config, runs, projects, runJson, logSourceOf, (run) => sections.want(run));
  const sections = backend.createSections((runId, changed) => hub.sectionsChanged(runId, changed), (runId) => runs.get(runId));
  let url = '';
  const webhooks = new WebhookDispatcher(store.webhooks, projects, runJson, { publicUrl: () => config.publicUrl ?? url, retryFirstMs: config.webhookRetryMs, retryMaxMs: config.webhookRetryMaxMs, maxTries: config.webhookTries }, log);
  // Finished runs past their project's limits go at start, hourly, and when one of its runs ends.
  const retention = new RetentionSweeper(config.retention, { projects, store: store.retention, log, removed: (removed) => {
    runService.removed(removed, 'retention');
    return backend.purgesSettled();
  } });
  // Every change of a run, this hub's own or (cluster) any hub's or worker's.
  const changes = {
    changed(run: RunRow) {
      hub.runChanged(run);
      sections.runChanged(run);
      webhooks.runChanged(run);
      if (isTerminal(run.status)) retention.sweepProject(run.project_id).catch((error: unknown) => log.error({ err: error, project_id: run.project_id }, 'the retention sweep failed'));
    },
    removed: (projectId: number, runId: number, reason: RemovalReason) => {
      hub.runRemoved(projectId, runId, reason);
      sections.forget(runId).catch((error: unknown) => log.warn({ err: error, run_id: runId }, 'stopping a removed run\'s section index failed'));
    },
  };
  backend.connectRunChanges(runService, changes);
  runService.on('purged', (run, reason) => {
    sections.forget(run.id).catch((error: unknown) => log.warn({ err: error, run_id: run.id }, 'stopping a purged run\'s section index failed'));
    backend.purgeLog(run, reason, changes).catch((error: unknown) => log.warn({ err: error, run_id: run.id }, 'removing a purged log failed'));
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
  const checks: Record<string, ReadyCheck> = backend.readyChecks();
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
  // Runs that went on while no hub indexed them: their sections now, not at their next change.
  sections.resume(await runs.listActive());
  // Not awaited: a long first sweep must not hold up serving.
  retention.start().catch((error: unknown) => log.error({ err: error }, 'the first retention sweep failed'));
  backend.start();
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
        webhooks.close();
        const launcherClosed = runService.close();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // A connection still mid-request a moment on (a slow or stalled client, one that sent nothing) is cut, not waited for.
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        await sockets?.close();
        await backend.stop();
        await hub.close();
        await sections.close();
        await stopped;
        clearTimeout(cut);
        await launcherClosed;
        await backend.close();
      })();
      return closing;
    },
  };
}
