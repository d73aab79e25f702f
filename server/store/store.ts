import type { ProjectStore } from './projects.js';
import type { RetentionStore } from './retention.js';
import type { RunStore } from './runs.js';
import type { SecretStore } from './secrets.js';
import type { WebhookStore } from './webhooks.js';

/** Where projects and runs live: SQLite embedded (today), PostgreSQL for a cluster (next). */
export interface Store {
  readonly projects: ProjectStore;
  readonly runs: RunStore;
  readonly webhooks: WebhookStore;
  /** readiness: resolves if the database answers now */
  ping(): Promise<void>;
  readonly secrets: SecretStore;
  readonly retention: RetentionStore;
  close(): Promise<void>;
}
