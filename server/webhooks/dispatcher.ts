import { setTimeout as delay } from 'node:timers/promises';
import type pino from 'pino';
import type { ProjectStore } from '../store/projects.js';
import { isTerminal, type RunRow, type RunStore } from '../store/runs.js';
import type { DeliveryAttempt, DeliveryRow, WebhookRow, WebhookStore } from '../store/webhooks.js';
import type { Run, WebhookEvent, WebhookPayload } from '../wire.js';
import { signBody } from './signature.js';

export interface DispatcherOptions {
  /** the GUI's address, for the run's link in each payload */
  publicUrl: () => string;
  /** the wait after the first failed try; each next one waits 4× longer */
  retryFirstMs: number;
  /** the longest wait between two tries (4× after each failure grows past any sense by the 8th) */
  retryMaxMs: number;
  /** tries in all before a delivery is `failed` */
  maxTries: number;
  timeoutMs?: number;
  /** this hub's own clock (tests skew it); leases are reckoned by the store's, read through it */
  now?: () => number;
}

const TIMEOUT_MS = 10_000;
/** Pending deliveries whose holder went away are looked for this often. */
const SWEEP_MS = 30_000;
/** The store's clock is read again after this (this hub's clock may be stepped meanwhile). */
const CLOCK_READ_MS = 10_000;
const ERROR_TEXT_MAX = 500;
/** A store write that failed (a locked SQLite file) is tried again after this, doubling up to the most. */
const STORE_RETRY_MS = 1000;
const STORE_RETRY_MAX_MS = 30_000;

/** A delivery this hub holds the lease of: waiting for its next try, or being tried. */
interface Held {
  webhookId: number;
  /** the lease this hub set; its outcome is written only while the store still has it */
  leasedUntil: string;
  timer?: NodeJS.Timeout;
  abort?: AbortController;
}

/** The webhook event a run record stands for, if any. */
export function eventOf(run: Pick<RunRow, 'status'>): WebhookEvent | null {
  return run.status === 'pending' ? null : (`run.${run.status === 'running' ? 'started' : run.status}` as WebhookEvent);
}

/** Every event a run record has been through, with when it happened. */
function eventsOf(run: RunRow): [WebhookEvent, string][] {
  const events: [WebhookEvent, string][] = [];
  if (run.started_at) events.push(['run.started', run.started_at]);
  const ended = eventOf(run);
  if (isTerminal(run.status) && ended && run.finished_at) events.push([ended, run.finished_at]);
  return events;
}

const storeRetryAfter = (failures: number) => Math.min(STORE_RETRY_MS * 2 ** failures, STORE_RETRY_MAX_MS);

/**
 * Sends each run event to the project's webhooks that asked for it: POST JSON signed like GitHub's
 * (`X-Hub-Signature-256`), retried with backoff up to `maxTries`. Each (webhook, run, event) is
 * recorded once in the store before it is sent, so a change seen twice, or by every hub of a
 * cluster, is delivered once; the one whose record went in holds a lease on it, and pending
 * deliveries whose holder died are taken over when their lease runs out. Delivery is at least
 * once: a hub that dies between a POST and recording its outcome leaves the delivery to be sent
 * again, with the same `X-Hub-Delivery` id.
 */
export class WebhookDispatcher {
  private readonly seen = new Set<string>();
  private readonly held = new Map<number, Held>();
  /** waits before recording an event again */
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly closing = new AbortController();
  private readonly sweeper: NodeJS.Timeout;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** the store's clock minus this hub's, as last read */
  private clockOffsetMs = 0;
  /** performance.now() of that read; none yet */
  private clockReadAt: number | undefined;

  constructor(
    private readonly store: WebhookStore,
    private readonly projects: ProjectStore,
    private readonly runJson: (run: RunRow) => Run,
    private readonly options: DispatcherOptions,
    private readonly log: pino.Logger,
  ) {
    this.timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => {
      this.takeOverDue().catch((error: unknown) => this.log.error({ err: error }, 'looking for pending webhook deliveries failed'));
    }, SWEEP_MS).unref();
  }

  private get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Every change of a run record (from this hub, or from others through the store's notifications). */
  runChanged(run: RunRow): void {
    const event = eventOf(run);
    if (!event || this.closed) return;
    const key = `${run.id}:${event}`;
    if (this.seen.has(key)) return; // progress changes repeat `running`
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.add(key);
    this.record(run, event, 0);
  }

  /** At start, and every sweep: deliveries left pending by an earlier process or another hub. */
  takeOverDue(): Promise<void> {
    return this.deliverDue().catch((error: unknown) => this.log.warn({ err: error }, 'looking for pending webhook deliveries failed'));
  }

  /**
   * At start: events of runs that started or ended within the last `windowMs` whose deliveries were
   * never recorded (a hub killed between a run's change and recording them). Recording is one
   * delivery per webhook, run and event, so those recorded already stay as they are; a webhook
   * made after an event does not get it. The payload shows the run as it is now.
   */
  recoverMissed(runs: RunStore, windowMs: number): Promise<void> {
    const recover = async () => {
      for (const run of await this.untilRecorded(() => runs.listChangedSince(this.iso(-windowMs)), 'listing the runs of the window')) {
        for (const [event, at] of eventsOf(run)) {
          if (this.closed) return;
          this.seen.add(`${run.id}:${event}`);
          // One at a time, each asked again while the store refuses (a locked SQLite file): a
          // failure here must not give up the rest, nor this event (its key is seen now).
          await this.untilRecorded(() => this.dispatch(run, event, at), `recording ${event} of run ${run.id}`);
        }
      }
    };
    return recover().catch((error: unknown) => {
      if (!this.closed) this.log.warn({ err: error }, 'looking for webhook events never recorded failed');
    });
  }

  /** `work` until it succeeds, with the store's backoff; rejects only when this hub closes. */
  private async untilRecorded<T>(work: () => Promise<T>, what: string): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        return await work();
      } catch (error) {
        if (this.closed) throw error;
        this.log.warn({ err: error, failures: failures + 1 }, `${what} failed; trying again`);
        await delay(storeRetryAfter(failures), undefined, { signal: this.closing.signal });
      }
    }
  }

  /** A webhook was deleted: its deliveries went with it (the store cascades); none of them is tried again here. */
  webhookDeleted(webhookId: number): void {
    for (const [id, held] of this.held) {
      if (held.webhookId !== webhookId) continue;
      clearTimeout(held.timer);
      held.abort?.abort();
      this.held.delete(id);
    }
  }

  /** Stops every wait and every POST in flight; what was not recorded is sent again by whoever leases it next. */
  close(): void {
    this.closing.abort();
    clearInterval(this.sweeper);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const held of this.held.values()) {
      clearTimeout(held.timer);
      held.abort?.abort();
    }
    this.held.clear();
  }

  /**
   * Records the event's deliveries and starts them; a store that fails is asked again, with backoff,
   * until it answers or this hub closes (nothing else would look for the event again).
   */
  private record(run: RunRow, event: WebhookEvent, failures: number): void {
    if (this.closed) return;
    this.dispatch(run, event).catch((error: unknown) => {
      this.log.warn({ err: error, run_id: run.id, event, failures: failures + 1 }, 'a webhook event could not be recorded; trying again');
      if (this.closed) return;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.record(run, event, failures + 1);
      }, storeRetryAfter(failures));
      this.timers.add(timer);
    });
  }

  /** Records the event's deliveries (those of webhooks that existed `at` the event, when given) and starts them. */
  private async dispatch(run: RunRow, event: WebhookEvent, at?: string): Promise<void> {
    const hooks = (await this.store.list(run.project_id)).filter((hook) => hook.events.includes(event) && (at === undefined || hook.created_at <= at));
    if (hooks.length === 0) return;
    const project = await this.projects.get(run.project_id);
    const payload: WebhookPayload = {
      event,
      project: { id: run.project_id, name: project?.name ?? '' },
      run: this.runJson(run),
      url: `${this.options.publicUrl()}/#/projects/${run.project_id}/runs/${run.id}`,
    };
    await this.readClock();
    for (const hook of hooks) {
      // Already there (a repeat of this recording): its holder delivers it.
      const delivery = await this.store.createDelivery({ webhook_id: hook.id, run_id: run.id, event, payload: JSON.stringify(payload) }, this.leaseFor(0), this.iso(0));
      if (delivery) this.start(delivery);
    }
  }

  private async deliverDue(): Promise<void> {
    if (this.closed) return;
    await this.readClock();
    const due = await this.store.leaseDue(this.iso(0), this.leaseFor(0), 50);
    // One this hub holds already (its outcome still being written) has just had its lease extended.
    for (const delivery of due) {
      const held = this.held.get(delivery.id);
      if (held) held.leasedUntil = delivery.leased_until!;
      else this.start(delivery);
    }
  }

  /** Tries a delivery now, or after `waitMs`; a store that fails before the try puts it off. */
  private start(delivery: DeliveryRow, waitMs = 0, failures = 0): void {
    if (this.closed) return;
    const held: Held = { webhookId: delivery.webhook_id, leasedUntil: delivery.leased_until! };
    this.held.set(delivery.id, held);
    held.timer = setTimeout(() => {
      this.attempt(delivery, held).catch((error: unknown) => {
        if (this.held.get(delivery.id) !== held) return; // its webhook went meanwhile
        this.log.warn({ err: error, delivery_id: delivery.id }, 'a webhook delivery could not be tried; trying again');
        this.start(delivery, storeRetryAfter(failures), failures + 1);
      });
    }, waitMs);
  }

  /** One try; then delivered, failed for good, or tried again later (this hub keeps the lease meanwhile). */
  private async attempt(delivery: DeliveryRow, held: Held): Promise<void> {
    if (this.closed) return;
    held.abort = new AbortController();
    // Read at each try, not kept: a webhook deleted since is not tried again, a changed one is tried as it is now.
    const hook = await this.store.get(delivery.webhook_id);
    if (!hook || held.abort.signal.aborted) {
      this.forget(delivery.id, held);
      return;
    }
    const tries = delivery.tries + 1;
    const { status, error } = await this.post(delivery, hook, held.abort.signal);
    if (held.abort.signal.aborted) return; // deleted meanwhile: its record is gone with it
    const delivered = error === null;
    const last = !delivered && tries >= this.options.maxTries;
    const waitMs = Math.min(this.options.retryMaxMs, this.options.retryFirstMs * 4 ** (tries - 1));
    const leasedUntil = delivered || last ? null : this.leaseFor(waitMs);
    const recorded = await this.recordOutcome(delivery.id, held, {
      status: delivered ? 'delivered' : last ? 'failed' : 'pending',
      tries,
      last_status: status,
      last_error: error,
      next_attempt_at: delivered || last ? delivery.next_attempt_at : this.iso(waitMs),
      leased_until: leasedUntil,
    });
    if (!delivered) this.log.warn({ webhook_id: delivery.webhook_id, delivery_id: delivery.id, tries, error }, last ? 'a webhook delivery failed for good' : 'a webhook delivery failed; trying again');
    if (delivered || last || !recorded || this.held.get(delivery.id) !== held) {
      this.forget(delivery.id, held);
      return;
    }
    this.start({ ...delivery, tries, leased_until: leasedUntil }, waitMs);
  }

  private async post(delivery: DeliveryRow, hook: WebhookRow, cancelled: AbortSignal): Promise<{ status: number | null; error: string | null }> {
    // A timer of our own, not AbortSignal.timeout: a timeout signal only reachable through
    // AbortSignal.any can be collected before it fires (nodejs/node#48951), and the POST then waits
    // for ever on a receiver that never answers.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    try {
      const response = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'run-hub-webhook',
          'x-hub-event': delivery.event,
          'x-hub-delivery': String(delivery.id),
          'x-hub-signature-256': signBody(hook.secret, delivery.payload),
        },
        body: delivery.payload,
        redirect: 'manual',
        signal: AbortSignal.any([cancelled, deadline.signal]),
      });
      await response.body?.cancel();
      return { status: response.status, error: response.status < 200 || response.status >= 300 ? `HTTP ${response.status}` : null };
    } catch (caught) {
      const cause = (caught as { cause?: { code?: string; message?: string } }).cause;
      return { status: null, error: (cause?.code ?? cause?.message ?? (caught as Error).message).slice(0, ERROR_TEXT_MAX) };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Writes a try's outcome, again while the store refuses (a locked SQLite file answers SQLITE_BUSY),
   * until it goes in or this hub closes. Only under this hub's lease: one that ran out meanwhile and
   * was taken over by another hub (which sends it again) is left to that one, whose outcome this
   * late write must not undo. False when not written: the delivery is no longer this hub's to try.
   */
  private async recordOutcome(id: number, held: Held, attempt: DeliveryAttempt): Promise<boolean> {
    for (let failures = 0; ; failures++) {
      const lease = held.leasedUntil;
      try {
        if (await this.store.recordAttempt(id, lease, attempt, this.iso(0))) return true;
        if (held.leasedUntil !== lease) continue; // this hub's own sweep extended it meanwhile
        this.log.warn({ delivery_id: id }, 'a webhook delivery was taken over by another hub before its outcome was recorded here; it is left to that one');
        return false;
      } catch (error) {
        if (this.closed) {
          this.log.warn({ err: error, delivery_id: id }, 'a webhook delivery\'s outcome could not be recorded before closing; it will be sent again');
          return false;
        }
        this.log.warn({ err: error, delivery_id: id }, 'recording a webhook delivery\'s outcome failed; trying again');
        await delay(storeRetryAfter(failures), undefined, { signal: this.closing.signal }).catch(() => {});
      }
    }
  }

  private forget(id: number, held: Held): void {
    if (this.held.get(id) === held) this.held.delete(id);
  }

  /**
   * Reads the store's clock (PostgreSQL's now(), SQLite's own) when the last read is older than
   * CLOCK_READ_MS: leases and due times are shared by every hub, so they are reckoned by the one
   * clock all of them see, not each hub's own (one 30 s off would take over a lease still held,
   * and deliver twice). A failed read keeps the last offset; with none yet, it fails the caller,
   * which asks again.
   */
  private async readClock(): Promise<void> {
    if (this.clockReadAt !== undefined && performance.now() - this.clockReadAt < CLOCK_READ_MS) return;
    const before = this.now();
    try {
      const store = await this.store.clock();
      // The store read its clock somewhere within the round trip: its middle is off by half of it at most.
      this.clockOffsetMs = store - (before + this.now()) / 2;
      this.clockReadAt = performance.now();
    } catch (error) {
      if (this.clockReadAt === undefined) throw error;
      this.log.warn({ err: error }, 'reading the store\'s clock failed; the last offset stands');
    }
  }

  private iso(fromNowMs: number): string {
    return new Date(this.now() + this.clockOffsetMs + fromNowMs).toISOString();
  }

  /** Held for the wait before the next try plus longer than a try takes. */
  private leaseFor(waitMs: number): string {
    return this.iso(waitMs + 3 * this.timeoutMs);
  }
}
