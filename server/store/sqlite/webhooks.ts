import type { WebhookDelivery } from '../../wire.js';
import type { DeliveryAttempt, DeliveryRow, WebhookRow, WebhookStore } from '../webhooks.js';
import type { Db } from './db.js';

type StoredWebhook = Omit<WebhookRow, 'events'> & { events: string };
const toWebhook = (row: StoredWebhook): WebhookRow => ({ ...row, events: JSON.parse(row.events) as WebhookRow['events'] });

export class SqliteWebhookStore implements WebhookStore {
  constructor(private readonly db: Db) {}

  async list(projectId: number): Promise<WebhookRow[]> {
    return (await this.db.all<StoredWebhook[]>('SELECT * FROM webhooks WHERE project_id = ? ORDER BY id', projectId)).map(toWebhook);
  }

  async get(id: number): Promise<WebhookRow | undefined> {
    const row = await this.db.get<StoredWebhook>('SELECT * FROM webhooks WHERE id = ?', id);
    return row && toWebhook(row);
  }

  async insert(webhook: Pick<WebhookRow, 'project_id' | 'url' | 'secret' | 'events'>): Promise<WebhookRow> {
    const result = await this.db.run(
      'INSERT INTO webhooks (project_id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?)',
      webhook.project_id, webhook.url, webhook.secret, JSON.stringify(webhook.events), new Date().toISOString(),
    );
    return (await this.get(result.lastID!))!;
  }

  async delete(id: number): Promise<boolean> {
    return ((await this.db.run('DELETE FROM webhooks WHERE id = ?', id)).changes ?? 0) > 0;
  }

  /** SQLite's own 'now' (the machine's clock, as the one hub on it sees it too). */
  async clock(): Promise<number> {
    const row = await this.db.get<{ ms: number }>("SELECT CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER) AS ms");
    return row!.ms;
  }

  async createDelivery(delivery: { webhook_id: number; run_id: number; event: string; payload: string }, leasedUntil: string, now: string): Promise<DeliveryRow | null> {
    return (await this.db.get<DeliveryRow>(
      `INSERT INTO webhook_deliveries (webhook_id, run_id, event, payload, status, next_attempt_at, leased_until, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (webhook_id, run_id, event) DO NOTHING RETURNING *`,
      delivery.webhook_id, delivery.run_id, delivery.event, delivery.payload, now, leasedUntil, now, now,
    )) ?? null;
  }

  leaseDue(now: string, leasedUntil: string, limit: number): Promise<DeliveryRow[]> {
    return this.db.all<DeliveryRow[]>(
      `UPDATE webhook_deliveries SET leased_until = ? WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? AND (leased_until IS NULL OR leased_until < ?) ORDER BY id LIMIT ?
       ) RETURNING *`,
      leasedUntil, now, now, limit,
    );
  }

  async recordAttempt(id: number, heldUntil: string, attempt: DeliveryAttempt, now: string): Promise<boolean> {
    const result = await this.db.run(
      'UPDATE webhook_deliveries SET status = ?, tries = ?, last_status = ?, last_error = ?, next_attempt_at = ?, leased_until = ?, updated_at = ? WHERE id = ? AND leased_until = ?',
      attempt.status, attempt.tries, attempt.last_status, attempt.last_error, attempt.next_attempt_at, attempt.leased_until, now, id, heldUntil,
    );
    return (result.changes ?? 0) > 0;
  }

  listDeliveries(webhookId: number, limit: number): Promise<WebhookDelivery[]> {
    return this.db.all<WebhookDelivery[]>(
      'SELECT id, webhook_id, run_id, event, status, tries, last_status, last_error, next_attempt_at, created_at, updated_at FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?',
      webhookId, limit,
    );
  }
}
