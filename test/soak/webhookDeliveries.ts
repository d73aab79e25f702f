import sqlite3 from 'sqlite3';
import type { TestHub } from '../helpers/hub.js';
import type { WebhookReceiver } from './webhookReceivers.js';

export interface WebhookRecord {
  id: number;
  projectId: number;
  receiver: WebhookReceiver;
}

/** A run as the soak last saw it: enough to know which events it had. */
export interface RunSeen {
  projectId: number;
  id: number;
  status: string;
  started_at: string | null;
}

/** The events a run's record says happened: started (if it ever ran) and its end. */
export function eventsOfRun(run: RunSeen): string[] {
  const events = [];
  if (run.started_at) events.push('run.started');
  if (['completed', 'failed', 'cancelled'].includes(run.status)) events.push(`run.${run.status}`);
  return events;
}

/**
 * Every event of every run, for every webhook of its project, reached its receiver with a 2xx
 * answer, and all its tries carried one delivery id (the hub's record of it, when given); every
 * POST was signed with the webhook's secret.
 */
export function checkDeliveries(webhooks: WebhookRecord[], runs: RunSeen[], recorded: DeliveryRow[]): { expected: number; delivered: number; repeats: number; mismatches: string[] } {
  const mismatches: string[] = [];
  let expected = 0;
  let delivered = 0;
  let repeats = 0;
  const recordOf = new Map(recorded.map((row) => [`${row.webhook_id}:${row.run_id}:${row.event}`, row]));
  for (const webhook of webhooks) {
    const posts = webhook.receiver.received.filter((post) => post.path === `/${webhook.projectId}`);
    for (const post of posts) if (!post.signed) mismatches.push(`webhook ${webhook.id} (${webhook.receiver.kind}): delivery ${post.delivery} not signed with its secret`);
    const events = new Map<string, string>();
    for (const run of runs.filter((r) => r.projectId === webhook.projectId)) for (const event of eventsOfRun(run)) events.set(`${run.id}:${event}`, `run ${run.id} ${event}`);
    // What the hub recorded for this webhook is expected too (a run the soak never saw end).
    for (const row of recorded.filter((r) => r.webhook_id === webhook.id)) events.set(`${row.run_id}:${row.event}`, `run ${row.run_id} ${row.event}`);
    for (const [key, label] of events) {
      expected++;
      const [runId, event] = key.split(':');
      const tries = posts.filter((post) => post.runId === Number(runId) && post.event === event);
      const ids = new Set(tries.map((post) => post.delivery));
      const row = recordOf.get(`${webhook.id}:${key}`);
      const where = `webhook ${webhook.id} (${webhook.receiver.kind}): ${label}`;
      if (tries.length === 0) mismatches.push(`${where}: never posted (hub's record: ${row ? `${row.status} #${row.id}` : 'none'})`);
      else if (!tries.some((post) => post.answered !== null)) mismatches.push(`${where}: ${tries.length} tries, none answered 2xx (hub's record: ${row?.status ?? 'none'})`);
      else delivered++;
      if (ids.size > 1) mismatches.push(`${where}: ${ids.size} delivery ids (${[...ids].join(', ')})`);
      if (row && tries.length > 0 && !ids.has(String(row.id))) mismatches.push(`${where}: posted as ${[...ids].join(', ')}, recorded as ${row.id}`);
      if (tries.filter((post) => post.answered !== null).length > 1) repeats++;
    }
  }
  return { expected, delivered, repeats, mismatches };
}

/** One webhook per project and receiver, posting to `<receiver>/<projectId>`. */
export async function createWebhooks(hub: TestHub, projects: number[], receivers: WebhookReceiver[]): Promise<WebhookRecord[]> {
  const webhooks: WebhookRecord[] = [];
  for (const projectId of projects) {
    for (const receiver of receivers) {
      const { status, body } = await hub.api('POST', `/api/projects/${projectId}/webhooks`, { url: `${receiver.url}/${projectId}`, secret: receiver.secret });
      if (status !== 201) throw new Error(`webhook not created: ${status} ${JSON.stringify(body)}`);
      webhooks.push({ id: body.id, projectId, receiver });
    }
  }
  return webhooks;
}

export type DeliveryRow = { webhook_id: number; run_id: number; event: string; id: number; status: string };

/** The hub's own record of every delivery (read-only, beside the running server). */
export function readDeliveries(databaseFile: string): Promise<DeliveryRow[]> {
  const db = new sqlite3.Database(databaseFile, sqlite3.OPEN_READONLY);
  return new Promise<DeliveryRow[]>((resolve, reject) => db.all('SELECT id, webhook_id, run_id, event, status FROM webhook_deliveries', (error, rows: DeliveryRow[]) => (error ? reject(error) : resolve(rows)))).finally(() => db.close());
}
