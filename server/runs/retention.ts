import type pino from 'pino';
import type { Project, ProjectStore } from '../store/projects.js';
import type { RetentionStore } from '../store/retention.js';
import type { RunRow } from '../store/runs.js';
import type { Retention } from '../wire.js';

export type Limits = { readonly runs: number | null; readonly days: number | null; readonly log_bytes: number | null };
export type RetentionRule = keyof Limits;

const DAY_MS = 86_400_000;
/** Runs (or deliveries) deleted per statement: each batch is a short transaction, however many go. */
export const SWEEP_BATCH = 1000;
export const SWEEP_EVERY_MS = 3_600_000;
/** Delivered and failed webhook deliveries are kept this long when the hub sets no `days` limit. */
export const DELIVERY_DAYS_DEFAULT = 30;
/** The advisory lock key of retention (with a project id, or 0 for the deliveries): one hub at a time sweeps each. */
export const RETENTION_LOCK = 7_461_002;

/** A project's limits: its own where it sets one (null: none), else the hub's default. */
export function limitsOf(defaults: Limits, own: Retention): Limits {
  return {
    runs: own.runs !== undefined ? own.runs : defaults.runs,
    days: own.days !== undefined ? own.days : defaults.days,
    log_bytes: own.log_bytes !== undefined ? own.log_bytes : defaults.log_bytes,
  };
}

export interface SweeperDeps {
  projects: ProjectStore;
  store: RetentionStore;
  /** runs the store has deleted (a batch): their log and side files go, and subscribers are told; the next batch waits for it */
  removed: (runs: readonly RunRow[]) => void | Promise<void>;
  log: pino.Logger;
  /** the clock (tests set it) */
  now?: () => number;
}

/** Removes finished runs past their project's limits: at start, every hour, and after a run of the project ends. */
export class RetentionSweeper {
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** project sweeps queued and not started yet */
  private readonly waiting = new Map<number, Promise<number>>();
  private readonly now: () => number;

  constructor(private readonly defaults: Limits, private readonly deps: SweeperDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Sweeps now and then every `everyMs`. */
  start(everyMs = SWEEP_EVERY_MS): Promise<number> {
    this.timer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.deps.log.error({ err: error }, 'the retention sweep failed'));
    }, everyMs);
    this.timer.unref();
    return this.sweep();
  }

  /** Stops sweeping: a sweep under way ends after its current batch (the rest is the next start's). */
  close(): Promise<unknown> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.queue;
  }

  /** Every project, then old webhook deliveries; sweeps run one at a time. Returns how many runs were removed. */
  sweep(): Promise<number> {
    return this.enqueue(async () => {
      let removed = 0;
      for (const project of await this.deps.projects.list()) {
        if (this.closed) return removed;
        removed += await this.sweepOne(project);
      }
      await this.pruneDeliveries();
      return removed;
    });
  }

  /** One project (after one of its runs ended); a sweep of it already waiting to start covers this one too. */
  sweepProject(projectId: number): Promise<number> {
    const waiting = this.waiting.get(projectId);
    if (waiting) return waiting;
    const sweep = this.enqueue(async () => {
      this.waiting.delete(projectId);
      const project = await this.deps.projects.get(projectId);
      return project ? this.sweepOne(project) : 0;
    });
    this.waiting.set(projectId, sweep);
    return sweep;
  }

  private enqueue(work: () => Promise<number>): Promise<number> {
    const next = this.queue.then(work).catch((error: unknown) => {
      this.deps.log.error({ err: error }, 'the retention sweep failed; it runs again later');
      return 0;
    });
    this.queue = next;
    return next;
  }

  /**
   * Under the project's lock (another hub sweeping it: skipped), each rule in turn, by index: the
   * runs past the newest `runs`, those that ended more than `days` ago, those past `log_bytes` from
   * the newest (never the newest itself for its size: a limit smaller than one log should not delete
   * the run someone is about to look at). Deleted in batches, oldest first.
   */
  private async sweepOne(project: Project): Promise<number> {
    const limits = limitsOf(this.defaults, project.retention);
    if (limits.runs === null && limits.days === null && limits.log_bytes === null) return 0;
    const { store } = this.deps;
    let removed = 0;
    const swept = await store.exclusively(RETENTION_LOCK, project.id, async () => {
      if (limits.runs !== null) {
        const maxId = await store.idPastNewest(project.id, limits.runs);
        if (maxId !== null) removed += await this.deleteInBatches(project, 'runs', limits, { maxId });
      }
      if (limits.days !== null) {
        const finishedBefore = new Date(this.now() - limits.days * DAY_MS).toISOString();
        removed += await this.deleteInBatches(project, 'days', limits, { finishedBefore });
      }
      if (limits.log_bytes !== null) {
        const maxId = await store.idPastBytes(project.id, limits.log_bytes);
        if (maxId !== null) removed += await this.deleteInBatches(project, 'log_bytes', limits, { maxId });
      }
    });
    if (!swept) this.deps.log.debug({ project_id: project.id }, 'another hub is sweeping this project');
    return removed;
  }

  private async deleteInBatches(project: Project, rule: RetentionRule, limits: Limits, past: { maxId: number } | { finishedBefore: string }): Promise<number> {
    let removed = 0;
    for (;;) {
      const started = performance.now();
      const runs = await this.deps.store.deleteFinished(project.id, past, SWEEP_BATCH);
      if (runs.length === 0) return removed;
      removed += runs.length;
      this.deps.log.info(
        { project_id: project.id, rule, limit: limits[rule], first_run_id: runs[0].id, last_run_id: runs[runs.length - 1].id, removed: runs.length, ms: Math.round(performance.now() - started) },
        'removed finished runs past the retention limits',
      );
      await this.deps.removed(runs);
      if (runs.length < SWEEP_BATCH || this.closed) return removed;
    }
  }

  /** Delivered and failed webhook deliveries older than the window (those of removed runs went with them). */
  private async pruneDeliveries(): Promise<number> {
    const days = this.defaults.days ?? DELIVERY_DAYS_DEFAULT;
    const before = new Date(this.now() - days * DAY_MS).toISOString();
    let pruned = 0;
    await this.deps.store.exclusively(RETENTION_LOCK, 0, async () => {
      for (;;) {
        const batch = await this.deps.store.pruneDeliveries(before, SWEEP_BATCH);
        pruned += batch;
        if (batch < SWEEP_BATCH) return;
      }
    });
    if (pruned > 0) this.deps.log.info({ pruned, days }, 'pruned webhook deliveries past the retention window');
    return pruned;
  }
}
