import type pino from 'pino';
import type { ProjectStore } from '../store/projects.js';
import type { RunRow } from '../store/runs.js';
import type { DeliveryRow, WebhookStore } from '../store/webhooks.js';
import type { Run, WebhookEvent, WebhookPayload } from '../wire.js';
import { signBody } from './signature.js';

export interface DispatcherOptions {
  /** the GUI's address, for the run's link in each payload */
  publicUrl: () => string;
  /** the wait after the first failed try; each next one waits 4× longer */
  retryFirstMs: number;
  /** tries in all before a delivery is `failed` */
  maxTries: number;
  timeoutMs?: number;
  now?: () => number;
}

const TIMEOUT_MS = 10_000;
/** Pending deliveries whose holder went away are looked for this often. */
const SWEEP_MS = 30_000;
const ERROR_TEXT_MAX = 500;

/** The webhook event a run record stands for, if any. */
export function eventOf(run: Pick<RunRow, 'status'>): WebhookEvent | null {
  return run.status === 'pending' ? null : (`run.${run.status === 'running' ? 'started' : run.status}` as WebhookEvent);
}

/**
 * Sends each run event to the project's webhooks that asked for it: POST JSON signed like GitHub's
 * (`X-Hub-Signature-256`), retried with backoff up to `maxTries`. Each (webhook, run, event) is
 * recorded once in the store before it is sent, so a change seen twice, or by every hub of a
 * cluster, is delivered once; the one whose record went in holds a lease on it, and pending
 * deliveries whose holder died are taken over when their lease runs out.
 */
export class WebhookDispatcher {
  private readonly seen = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(
    private readonly store: WebhookStore,
    private readonly projects: ProjectStore,
    private readonly runJson: (run: RunRow) => Run,
    private readonly options: DispatcherOptions,
    private readonly log: pino.Logger,
  ) {
    this.timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => void this.takeOverDue(), SWEEP_MS).unref();
  }

  /** Every change of a run record (from this hub, or from others through the store's notifications). */
  runChanged(run: RunRow): void {
    const event = eventOf(run);
    if (!event || this.closed) return;
    const key = `${run.id}:${event}`;
    if (this.seen.has(key)) return; // progress changes repeat `running`
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.add(key);
    void this.dispatch(run, event).catch((error: unknown) => this.log.error({ err: error, run_id: run.id, event }, 'a webhook event could not be recorded'));
  }

  /** At start: deliveries left pending by an earlier process. */
  takeOverDue(): Promise<void> {
    return this.deliverDue().catch((error: unknown) => this.log.warn({ err: error }, 'looking for pending webhook deliveries failed'));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async dispatch(run: RunRow, event: WebhookEvent): Promise<void> {
    const hooks = (await this.store.list(run.project_id)).filter((hook) => hook.events.includes(event));
    if (hooks.length === 0) return;
    const project = await this.projects.get(run.project_id);
    const payload: WebhookPayload = {
      event,
      project: { id: run.project_id, name: project?.name ?? '' },
      run: this.runJson(run),
      url: `${this.options.publicUrl()}/#/projects/${run.project_id}/runs/${run.id}`,
    };
    for (const hook of hooks) {
      const delivery = await this.store.createDelivery({ webhook_id: hook.id, run_id: run.id, event, payload: JSON.stringify(payload) }, this.leaseFor(0));
      if (delivery) void this.attempt(delivery, hook.url, hook.secret);
    }
  }

  private async deliverDue(): Promise<void> {
    if (this.closed) return;
    const due = await this.store.leaseDue(this.iso(0), this.leaseFor(0), 50);
    for (const delivery of due) {
      const hook = await this.store.get(delivery.webhook_id);
      if (hook) void this.attempt(delivery, hook.url, hook.secret);
    }
  }

  /** One try; then delivered, failed for good, or tried again later (this hub keeps the lease meanwhile). */
  private async attempt(delivery: DeliveryRow, url: string, secret: string): Promise<void> {
    if (this.closed) return;
    const tries = delivery.tries + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'run-hub-webhook',
          'x-hub-event': delivery.event,
          'x-hub-delivery': String(delivery.id),
          'x-hub-signature-256': signBody(secret, delivery.payload),
        },
        body: delivery.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.status;
      await response.body?.cancel();
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (caught) {
      const cause = (caught as { cause?: { code?: string; message?: string } }).cause;
      error = (cause?.code ?? cause?.message ?? (caught as Error).message).slice(0, ERROR_TEXT_MAX);
    }
    const delivered = error === null;
    const last = !delivered && tries >= this.options.maxTries;
    const waitMs = this.options.retryFirstMs * 4 ** (tries - 1);
    await this.store.recordAttempt(delivery.id, {
      status: delivered ? 'delivered' : last ? 'failed' : 'pending',
      tries,
      last_status: status,
      last_error: error,
      next_attempt_at: delivered || last ? delivery.next_attempt_at : this.iso(waitMs),
      leased_until: delivered || last ? null : this.leaseFor(waitMs),
    });
    if (delivered) return;
    this.log.warn({ webhook_id: delivery.webhook_id, delivery_id: delivery.id, tries, error }, last ? 'a webhook delivery failed for good' : 'a webhook delivery failed; trying again');
    if (last || this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt({ ...delivery, tries }, url, secret).catch((caught: unknown) => this.log.error({ err: caught }, 'a webhook retry failed'));
    }, waitMs);
    this.timers.add(timer);
  }

  private iso(fromNowMs: number): string {
    return new Date(this.now() + fromNowMs).toISOString();
  }

  /** Held for the wait before the next try plus longer than a try takes. */
  private leaseFor(waitMs: number): string {
    return this.iso(waitMs + 3 * this.timeoutMs);
  }
}
