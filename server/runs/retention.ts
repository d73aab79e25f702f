import type pino from 'pino';
import type { Project, ProjectStore } from '../store/projects.js';
import { isTerminal, type RunRow, type RunStore } from '../store/runs.js';
import type { Retention } from '../wire.js';

export type Limits = { readonly runs: number | null; readonly days: number | null; readonly log_bytes: number | null };
export type RetentionRule = keyof Limits;

const DAY_MS = 86_400_000;
const PAGE = 500;
export const SWEEP_EVERY_MS = 3_600_000;

/** A project's limits: its own where it sets one (null: none), else the hub's default. */
export function limitsOf(defaults: Limits, own: Retention): Limits {
  return {
    runs: own.runs !== undefined ? own.runs : defaults.runs,
    days: own.days !== undefined ? own.days : defaults.days,
    log_bytes: own.log_bytes !== undefined ? own.log_bytes : defaults.log_bytes,
  };
}

/**
 * The finished runs (newest first) past a project's limits, each with the first rule it breaks:
 * beyond the newest `runs`, finished more than `days` ago, or beyond `log_bytes` of logs counted
 * from the newest. The newest finished run is never removed for its size alone: a limit smaller
 * than one log should not delete the run someone is about to look at.
 */
export function pastLimits(finished: readonly RunRow[], limits: Limits, now: number): { run: RunRow; rule: RetentionRule }[] {
  const removed: { run: RunRow; rule: RetentionRule }[] = [];
  let bytes = 0;
  finished.forEach((run, index) => {
    bytes += run.log_size;
    const finishedAt = Date.parse(run.finished_at ?? run.created_at);
    if (limits.runs !== null && index >= limits.runs) removed.push({ run, rule: 'runs' });
    else if (limits.days !== null && finishedAt < now - limits.days * DAY_MS) removed.push({ run, rule: 'days' });
    else if (limits.log_bytes !== null && index > 0 && bytes > limits.log_bytes) removed.push({ run, rule: 'log_bytes' });
  });
  return removed;
}

export interface SweeperDeps {
  projects: ProjectStore;
  runs: RunStore;
  /** deletes a finished run with its log and side files, and tells the project's subscribers */
  remove: (run: RunRow, rule: RetentionRule) => Promise<void>;
  log: pino.Logger;
  /** the clock (tests set it) */
  now?: () => number;
}

/** Removes finished runs past their project's limits: at start, every hour, and after a run of the project ends. */
export class RetentionSweeper {
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
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

  close(): Promise<unknown> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.queue;
  }

  /** Every project; sweeps run one at a time. Returns how many runs were removed. */
  sweep(): Promise<number> {
    return this.enqueue(async () => {
      let removed = 0;
      for (const project of await this.deps.projects.list()) removed += await this.sweepOne(project);
      return removed;
    });
  }

  sweepProject(projectId: number): Promise<number> {
    return this.enqueue(async () => {
      const project = await this.deps.projects.get(projectId);
      return project ? this.sweepOne(project) : 0;
    });
  }

  private enqueue(work: () => Promise<number>): Promise<number> {
    const next = this.queue.then(work).catch((error: unknown) => {
      this.deps.log.error({ err: error }, 'the retention sweep failed; it runs again later');
      return 0;
    });
    this.queue = next;
    return next;
  }

  private async sweepOne(project: Project): Promise<number> {
    const limits = limitsOf(this.defaults, project.retention);
    if (limits.runs === null && limits.days === null && limits.log_bytes === null) return 0;
    const finished: RunRow[] = [];
    for (let before: number | undefined; ; ) {
      const page = await this.deps.runs.listForProject(project.id, PAGE, before);
      finished.push(...page.filter((run) => isTerminal(run.status)));
      if (page.length < PAGE) break;
      before = page[page.length - 1].id;
    }
    const removals = pastLimits(finished, limits, this.now());
    let removed = 0;
    for (const { run, rule } of removals) {
      try {
        await this.deps.remove(run, rule);
      } catch (error) {
        // Removed meanwhile (by a user, or another hub's sweep): nothing left to do.
        if ((error as { status?: number }).status !== 404) this.deps.log.warn({ err: error, run_id: run.id }, 'removing a run past the retention limits failed');
        continue;
      }
      removed++;
      this.deps.log.info({ project_id: project.id, run_id: run.id, rule, limit: limits[rule] }, 'removed a finished run past the retention limits');
    }
    return removed;
  }
}
