import type { Webhook, WebhookDelivery, WebhookEvent } from '../wire.js';

export interface WebhookRow extends Webhook {
  secret: string;
}

export interface DeliveryRow extends WebhookDelivery {
  payload: string;
  leased_until: string | null;
}

export type DeliveryAttempt = Pick<DeliveryRow, 'status' | 'tries' | 'last_status' | 'last_error' | 'next_attempt_at' | 'leased_until'>;

/**
 * Webhooks and their deliveries. Implementations must pass test/store/webhookStore.contract.ts.
 * Times are ISO 8601 strings in UTC (they compare as text).
 */
export interface WebhookStore {
  list(projectId: number): Promise<WebhookRow[]>;
  get(id: number): Promise<WebhookRow | undefined>;
  insert(webhook: Pick<WebhookRow, 'project_id' | 'url' | 'secret' | 'events'>): Promise<WebhookRow>;
  delete(id: number): Promise<boolean>;
  /** One delivery per webhook, run and event, leased to the caller until `leasedUntil`, due and dated `now` (the store's clock as the caller reckons it); null when it exists already. */
  createDelivery(delivery: { webhook_id: number; run_id: number; event: WebhookEvent; payload: string }, leasedUntil: string, now: string): Promise<DeliveryRow | null>;
  /** Pending deliveries due by `now` that nobody holds (a hub that died let its lease run out), leased to the caller. */
  leaseDue(now: string, leasedUntil: string, limit: number): Promise<DeliveryRow[]>;
  /**
   * A try's outcome, written only while the delivery's lease is still `heldUntil` (the caller's): false,
   * and nothing changed, once another hub took it over (or it is gone). `now`: as in createDelivery.
   */
  recordAttempt(id: number, heldUntil: string, attempt: DeliveryAttempt, now: string): Promise<boolean>;
  /**
   * The store's own clock (ms since the epoch): the one every hub's leases and due times are
   * reckoned by, so that a hub whose clock is off neither takes over a lease early nor holds one late.
   */
  clock(): Promise<number>;
  /** newest first */
  listDeliveries(webhookId: number, limit: number): Promise<WebhookDelivery[]>;
}

/** A webhook as the API shows it: without its secret. */
export const publicWebhook = ({ secret: _secret, ...webhook }: WebhookRow): Webhook => webhook;
