import type pino from 'pino';
import type { Config } from '../config.js';
import type { Pipelines } from '../pipelines/load.js';
import type { RunService } from '../runs/service.js';
import type { ProjectStore } from '../store/projects.js';
import type { RunRow, RunStore } from '../store/runs.js';
import type { WebhookStore } from '../store/webhooks.js';
import type { WebhookDispatcher } from '../webhooks/dispatcher.js';
import type { LogSource } from '../logs/logSource.js';
import type { ReadyReport, Run } from '../wire.js';
import type { LogHub } from '../hub/logHub.js';
import type { HubMetrics } from '../metrics/hubMetrics.js';
import type { Drain } from './drain.js';
import type { ProjectSecrets } from '../secrets/projectSecrets.js';
import type { SectionIndex } from '../sections/sectionIndex.js';

/** What the routes need, handed over by the composition root. */
export interface AppServices {
  config: Config;
  log: pino.Logger;
  pipelines: Pipelines;
  projects: ProjectStore;
  runs: RunStore;
  runService: RunService;
  hub: LogHub;
  /** where a run's log is read from */
  logSourceOf: (run: RunRow) => LogSource;
  /** a run as clients see it */
  runJson: (run: RunRow) => Run;
  metrics: HubMetrics;
  /** the runs' section indexes */
  sections: SectionIndex;
  webhooks: WebhookStore;
  /** `/api/ready`: every part the hub needs, checked now */
  readiness: () => Promise<ReadyReport>;
  /** told when a webhook is deleted, to stop its pending deliveries */
  webhookDispatcher: Pick<WebhookDispatcher, 'webhookDeleted'>;
  /** whether the hub is draining (SIGTERM), and its SSE streams to close when it does */
  drain: Drain;
  /** project secrets: names out, values in, never out */
  secrets: ProjectSecrets;
}
