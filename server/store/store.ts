import type { ProjectStore } from './projects.js';
import type { RetentionStore } from './retention.js';
import type { RunStore } from './runs.js';
import type { WebhookStore } from './webhooks.js';

/** Where projects and runs live: SQLite embedded (today), PostgreSQL for a cluster (next). */
export interface Store {
  readonly projects: ProjectStore;
  readonly runs: RunStore;
  readonly webhooks: WebhookStore;
  readonly retention: RetentionStore;
  close(): Promise<void>;
}
