import type pg from 'pg';
import type { WebhookDelivery } from '../../wire.js';
import type { DeliveryAttempt, DeliveryRow, WebhookRow, WebhookStore } from '../webhooks.js';

type StoredWebhook = Omit<WebhookRow, 'events'> & { events: string };
const toWebhook = (row: StoredWebhook): WebhookRow => ({ ...row, events: JSON.parse(row.events) as WebhookRow['events'] });

/** The same as SQLite's; leasing skips rows another hub is leasing at that moment. */
export class PostgresWebhookStore implements WebhookStore {
  constructor(private readonly pool: pg.Pool) {}

  async list(projectId: number): Promise<WebhookRow[]> {
    return (await this.pool.query<StoredWebhook>('SELECT * FROM webhooks WHERE project_id = $1 ORDER BY id', [projectId])).rows.map(toWebhook);
  }

  async get(id: number): Promise<WebhookRow | undefined> {
    const row = (await this.pool.query<StoredWebhook>('SELECT * FROM webhooks WHERE id = $1', [id])).rows[0];
    return row && toWebhook(row);
  }

  async insert(webhook: Pick<WebhookRow, 'project_id' | 'url' | 'secret' | 'events'>): Promise<WebhookRow> {
    const { rows } = await this.pool.query<StoredWebhook>(
      'INSERT INTO webhooks (project_id, url, secret, events, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
      [webhook.project_id, webhook.url, webhook.secret, JSON.stringify(webhook.events), new Date().toISOString()],
    );
    return toWebhook(rows[0]);
  }

  async delete(id: number): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM webhooks WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async clock(): Promise<number> {
    const { rows } = await this.pool.query<{ ms: string }>('SELECT (extract(epoch FROM now()) * 1000)::bigint AS ms');
    return Number(rows[0].ms);
  }

  async createDelivery(delivery: { webhook_id: number; run_id: number; event: string; payload: string }, leasedUntil: string, now: string): Promise<DeliveryRow | null> {
    const { rows } = await this.pool.query<DeliveryRow>(
      `INSERT INTO webhook_deliveries (webhook_id, run_id, event, payload, status, next_attempt_at, leased_until, created_at, updated_at)
       VALUES ($1, $2, $3, $4, 'pending', $5, $6, $5, $5) ON CONFLICT (webhook_id, run_id, event) DO NOTHING RETURNING *`,
      [delivery.webhook_id, delivery.run_id, delivery.event, delivery.payload, now, leasedUntil],
    );
    return rows[0] ?? null;
  }

  async leaseDue(now: string, leasedUntil: string, limit: number): Promise<DeliveryRow[]> {
    const { rows } = await this.pool.query<DeliveryRow>(
      `UPDATE webhook_deliveries SET leased_until = $1 WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $2 AND (leased_until IS NULL OR leased_until < $2)
         ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
       ) RETURNING *`,
      [leasedUntil, now, limit],
    );
    return rows;
  }

  async recordAttempt(id: number, heldUntil: string, attempt: DeliveryAttempt, now: string): Promise<boolean> {
    const result = await this.pool.query(
      'UPDATE webhook_deliveries SET status = $2, tries = $3, last_status = $4, last_error = $5, next_attempt_at = $6, leased_until = $7, updated_at = $8 WHERE id = $1 AND leased_until = $9',
      [id, attempt.status, attempt.tries, attempt.last_status, attempt.last_error, attempt.next_attempt_at, attempt.leased_until, now, heldUntil],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async listDeliveries(webhookId: number, limit: number): Promise<WebhookDelivery[]> {
    return (await this.pool.query<WebhookDelivery>(
      'SELECT id, webhook_id, run_id, event, status, tries, last_status, last_error, next_attempt_at, created_at, updated_at FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2',
      [webhookId, limit],
    )).rows;
  }
}
