import type pino from 'pino';
import type { RemovalReason } from '../../wire.js';
import type { RunRow, RunStore } from '../runs.js';
import { parseRunNotice } from './notify.js';

export interface RunFeedEvents {
  /** a run was created or changed (each state once, in the order the database had them) */
  changed(run: RunRow): void;
  removed(projectId: number, runId: number, reason: RemovalReason): void;
}

/**
 * Runs that started or ended this long before the last read are read again: the times are written by
 * each hub's and worker's own clock, and a transaction may commit a while after it took its time.
 */
const RESYNC_MARGIN_MS = 2 * 60_000;
/** Runs asked about per query when looking for those gone from the database. */
const GONE_BATCH = 1000;

/** What a follower or a webhook sees of a run; a change of anything else (the live `log_size`) is not news. */
const fingerprint = (run: RunRow) =>
  JSON.stringify([run.status, run.started_at, run.finished_at, run.exit_code, run.signal, run.error_message, run.current_step, run.progress_current, run.progress_total, run.steps]);

/**
 * Every change of a run in the cluster, for one hub: from the notices on the runs channel (hints:
 * each is a run to read again) and, because notices sent while the LISTEN connection was away are
 * lost, from reading what changed — the active runs and those that started or ended lately — each
 * time LISTEN is back and every `resyncMs` (the backstop). Reads and deliveries are done one at a
 * time, in order, so a run is never delivered older than it was delivered before; a state already
 * delivered is not delivered again by a re-read.
 */
export class RunFeed {
  /** the last state delivered, per run, for those a re-read may find again */
  private delivered = new Map<number, string>();
  /** the project of each run in `delivered`: a run gone from the database is announced removed with it */
  private projectOf = new Map<number, number>();
  /** runs noticed, read together by the next read queued */
  private batch: Set<number> | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** the start of the last whole re-read (this hub's clock) */
  private lastResync: number | null = null;
  private resyncQueued = false;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly runs: RunStore, private readonly events: RunFeedEvents, resyncMs: number, private readonly log: pino.Logger) {
    this.timer = setInterval(() => this.resync(), resyncMs);
    this.timer.unref();
  }

  /** A notification on the runs channel. */
  notice(payload: string): void {
    const notice = parseRunNotice(payload);
    if (!notice || this.closed) return;
    if (notice.kind === 'removed') {
      this.batch = null; // changes noticed after it are read after it
      this.enqueue(async () => {
        this.delivered.delete(notice.runId);
        this.projectOf.delete(notice.runId);
        this.events.removed(notice.projectId, notice.runId, notice.reason);
      });
      return;
    }
    if (this.batch) {
      this.batch.add(notice.runId);
      return;
    }
    const batch = new Set([notice.runId]);
    this.batch = batch;
    this.enqueue(async () => {
      if (this.batch === batch) this.batch = null;
      try {
        const rows = await Promise.all([...batch].map((id) => this.runs.get(id)));
        for (const run of rows) if (run) this.deliver(run, true);
      } catch (error) {
        // Their changes are found by the next re-read.
        this.log.warn({ err: error }, 'reading changed runs failed; the next re-read finds them');
      }
    });
  }

  /** Reads what changed since the last re-read (LISTEN is back, or the backstop's turn); one queued at a time. */
  resync(): void {
    if (this.resyncQueued || this.closed) return;
    this.resyncQueued = true;
    this.batch = null;
    this.enqueue(async () => {
      this.resyncQueued = false;
      const started = Date.now();
      try {
        const since = new Date((this.lastResync ?? started) - RESYNC_MARGIN_MS).toISOString();
        const [active, changed] = await Promise.all([this.runs.listActive(), this.runs.listChangedSince(since)]);
        const seen = new Map<number, RunRow>();
        for (const run of [...changed, ...active]) seen.set(run.id, run);
        const before = this.delivered;
        const projectsBefore = this.projectOf;
        this.delivered = new Map();
        this.projectOf = new Map();
        for (const run of [...seen.values()].sort((x, y) => x.id - y.id)) {
          const known = before.get(run.id);
          this.delivered.set(run.id, known ?? '');
          this.projectOf.set(run.id, run.project_id);
          this.deliver(run, false);
        }
        await this.announceGone([...before.keys()].filter((id) => !seen.has(id)), projectsBefore);
        this.lastResync = started;
      } catch (error) {
        this.log.warn({ err: error }, 'reading what changed in the runs failed; trying again at the next re-read');
      }
    });
  }

  /**
   * Runs delivered before that a re-read no longer finds: most ended a while ago, but one purged
   * while LISTEN was away (its removal notice lost with the connection) is gone from the database:
   * it is announced removed, so its followers are not left waiting. The reason is not known then;
   * `purged` is said.
   */
  private async announceGone(ids: number[], projectOf: Map<number, number>): Promise<void> {
    const byProject = new Map<number, number[]>();
    for (const id of ids) {
      const projectId = projectOf.get(id);
      if (projectId === undefined) continue;
      byProject.set(projectId, [...(byProject.get(projectId) ?? []), id]);
    }
    for (const [projectId, runIds] of byProject) {
      for (let i = 0; i < runIds.length; i += GONE_BATCH) {
        const batch = runIds.slice(i, i + GONE_BATCH);
        const still = await this.runs.ownedOf(projectId, batch);
        for (const id of batch) if (!still.has(id) && !this.closed) this.events.removed(projectId, id, 'purged');
      }
    }
  }

  /** Waits for the reads queued so far. */
  settled(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** A notice's read is always delivered (it says something changed); a re-read's only when it shows something new. */
  private deliver(run: RunRow, always: boolean): void {
    const state = fingerprint(run);
    if (!always && this.delivered.get(run.id) === state) return;
    this.delivered.set(run.id, state);
    this.projectOf.set(run.id, run.project_id);
    if (this.closed) return;
    try {
      this.events.changed(run);
    } catch (error) {
      this.log.error({ err: error, run_id: run.id }, 'passing on a run change failed');
    }
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => this.log.error({ err: error }, 'the run feed failed'));
  }
}
