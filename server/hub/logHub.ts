import { debuglog } from 'node:util';
import type { Config } from '../config.js';
import { HubError, notFound } from '../errors.js';
import { findTailStart, liveEdge } from '../logs/logFile.js';
import { MAX_TAIL_BYTES, type StartAt } from '../logs/pageReader.js';
import type { ProjectStore } from '../store/projects.js';
import type { RemovalReason, Run, RunRemovedMessage, Section, SectionsMessage } from '../wire.js';
import type { RunStore, RunRow } from '../store/runs.js';
import { isTerminal } from '../store/runs.js';
import type { LogSource } from '../logs/logSource.js';
import { runFrame, type CompleteMessage, type LogSink } from './messages.js';
import { RunTail, type Subscriber } from './runTail.js';

const debug = debuglog('hub:tails');

/** A watcher hint or a run change: read what was appended (`pump` logs its own read errors). */
function pumpTail(tail: RunTail): void {
  tail.pump().catch((error: unknown) => debug('run %d: read failed: %s', tail.runId, (error as Error).message));
}

/** `timestamps`: its `lines` messages carry the lines' times; `sections`: it gets `sections` messages. */
export interface SubscribeOptions { projectId?: number; timestamps?: boolean; sections?: boolean; onStart?: (offset: number) => void }

const completeOf = (run: RunRow): Omit<CompleteMessage, 'next'> => ({
  type: 'complete',
  run_id: run.id,
  status: run.status,
  exit_code: run.exit_code,
  error_message: run.error_message,
});

/**
 * The registry of run readers and of project subscriptions. It turns run events into `run`
 * messages and `complete`, and opens one RunTail per run while anyone follows it.
 */
export class LogHub {
  private readonly tails = new Map<number, RunTail>();
  private readonly projectSinks = new Map<number, Set<LogSink>>();
  private readonly runSinks = new Map<number, Map<LogSink, Subscriber>>();
  /** run subscribers that asked for `sections` messages */
  private readonly sectionSinks = new Map<number, Set<LogSink>>();
  private readonly unwatch = new Map<RunTail, () => void>();
  /** subscribes in progress per reader */
  private readonly holds = new Map<RunTail, number>();
  /** subscribes in progress per run, and whether the run was removed meanwhile (see runRemoved) */
  private readonly pending = new Map<number, { count: number; removed: boolean }>();

  /**
   * `runJson`: a run as clients see it; `sourceOf`: where a run's log is read from (the local file
   * today). The composition root decides both; the hub only reads and sends.
   */
  constructor(
    private readonly config: Config,
    private readonly runs: RunStore,
    private readonly projects: ProjectStore,
    private readonly runJson: (run: RunRow) => Run,
    private readonly sourceOf: (run: RunRow) => LogSource,
    /** a subscriber asked for the run's sections (a cluster hub indexes a running run from then on) */
    private readonly sectionsWanted: (run: RunRow) => void = () => {},
  ) {}

  /**
   * Subscribes a sink to a run's log from an offset or the last N lines; returns where it starts.
   */
  async subscribeRun(sink: LogSink, runId: number, startAt: StartAt, options: SubscribeOptions = {}): Promise<number> {
    const pending = this.pending.get(runId) ?? { count: 0, removed: false };
    this.pending.set(runId, pending);
    pending.count++;
    try {
      return await this.subscribeRunNow(sink, runId, startAt, options, pending);
    } finally {
      if (--pending.count === 0) this.pending.delete(runId);
    }
  }

  private async subscribeRunNow(sink: LogSink, runId: number, startAt: StartAt, options: SubscribeOptions, pending: { removed: boolean }): Promise<number> {
    const run = await this.runs.get(runId);
    if (!run || (options.projectId !== undefined && run.project_id !== options.projectId)) throw notFound('Run', runId);
    this.unsubscribeRun(sink, runId);
    // Held while this subscribe is under way, so the reader cannot be released under it.
    const { tail, created } = this.hold(run);
    try {
      if (created && !tail.isFinal) {
        // The run may have ended between reading its record and registering this reader.
        const latest = await this.runs.get(run.id);
        if (latest && isTerminal(latest.status)) tail.end(latest.log_size, completeOf(latest));
      }
      const start = await this.startOffset(tail, runId, startAt);
      // Removed while we read its record or log: as if it had been gone before (no await from here on).
      if (pending.removed) throw notFound('Run', runId);
      if (sink.closed) return start;
      options.onStart?.(start);
      const sinks = this.runSinks.get(runId) ?? new Map<LogSink, Subscriber>();
      this.runSinks.set(runId, sinks);
      const subscriber: Subscriber = tail.add(sink, start, () => this.subscriptionOnEnd(sink, runId, subscriber), options.timestamps);
      sinks.set(sink, subscriber);
      if (options.sections) {
        const wanting = this.sectionSinks.get(runId) ?? new Set<LogSink>();
        this.sectionSinks.set(runId, wanting.add(sink));
        this.sectionsWanted(run);
      }
      tail.start(subscriber);
      return start;
    } finally {
      this.holds.set(tail, this.holds.get(tail)! - 1);
      this.releaseIfIdle(tail); // opened for nobody (a failed subscribe, a client gone): freed now
    }
  }

  /** `complete` or `log_reset` ended a subscription: it no longer counts for its sink. */
  private subscriptionOnEnd(sink: LogSink, runId: number, subscriber: Subscriber): void {
    const sinks = this.runSinks.get(runId);
    if (sinks?.get(sink) !== subscriber) return;
    sinks.delete(sink);
    if (sinks.size === 0) this.runSinks.delete(runId);
    this.dropSectionSink(sink, runId);
    sink.subscriptionEnded?.(runId);
  }

  /** Where a subscription starts: an offset checked against the log, or where its last N lines start. */
  private async startOffset(tail: RunTail, runId: number, startAt: StartAt): Promise<number> {
    const handle = await tail.ensureOpen();
    if ('tail' in startAt) {
      if (!handle) return 0;
      // The last N complete lines now, wherever the reader is (it may be reading from the start).
      const end = tail.isFinal ? tail.committed : await liveEdge(handle, (await handle.stat()).size, this.config.maxLineBytes);
      return findTailStart(handle, end, startAt.tail, MAX_TAIL_BYTES);
    }
    const size = handle ? (await handle.stat()).size : 0;
    if (tail.recordedSize !== null && startAt.offset > tail.committed && startAt.offset <= tail.recordedSize) {
      throw new HubError(409, 'log_reset', `The log of run ${runId} is shorter than recorded (${tail.committed} of ${tail.recordedSize} bytes): offset ${startAt.offset} no longer applies. Subscribe again from 0 or with tail.`, { details: { run_id: runId } });
    }
    // A running cluster log that Redis lost is shipped again from its start: an offset a client read
    // before waits for it to get back there (the same bytes), and is told log_reset if it never does.
    if (startAt.offset > Math.max(size, tail.committed) && !(tail.mayRegrow && !tail.isFinal)) {
      throw new HubError(400, 'invalid_offset', `Offset ${startAt.offset} is past the end of the log of run ${runId} (${size} bytes)`, { details: { run_id: runId } });
    }
    return startAt.offset;
  }

  unsubscribeRun(sink: LogSink, runId: number): boolean {
    const sinks = this.runSinks.get(runId);
    const subscriber = sinks?.get(sink);
    if (!sinks || !subscriber) return false;
    sinks.delete(sink);
    if (sinks.size === 0) this.runSinks.delete(runId);
    this.dropSectionSink(sink, runId);
    const tail = this.tails.get(runId);
    if (tail) {
      tail.remove(subscriber);
      this.releaseIfIdle(tail);
    }
    return true;
  }

  private dropSectionSink(sink: LogSink, runId: number): void {
    const wanting = this.sectionSinks.get(runId);
    if (wanting?.delete(sink) && wanting.size === 0) this.sectionSinks.delete(runId);
  }

  /**
   * Sections a read of the run's log opened, closed or unfolded: one frame to the subscribers
   * that asked. Small and as frequent as the log's reads, so sent even to a congested sink (its
   * lines wait and catch up from the file; a section message would have nothing to catch up from).
   */
  sectionsChanged(runId: number, sections: Section[]): void {
    const wanting = this.sectionSinks.get(runId);
    if (!wanting) return;
    const frame = JSON.stringify({ type: 'sections', run_id: runId, sections } satisfies SectionsMessage);
    for (const sink of wanting) if (!sink.closed) sink.send('sections', frame);
  }

  async subscribeProject(sink: LogSink, projectId: number): Promise<void> {
    if (!(await this.projects.get(projectId))) throw notFound('Project', projectId);
    if (sink.closed) return; // gone while we looked: dropSink has already run
    const sinks = this.projectSinks.get(projectId) ?? new Set<LogSink>();
    this.projectSinks.set(projectId, sinks);
    sinks.add(sink);
  }

  unsubscribeProject(sink: LogSink, projectId: number): boolean {
    const sinks = this.projectSinks.get(projectId);
    const removed = sinks?.delete(sink) ?? false;
    if (sinks?.size === 0) this.projectSinks.delete(projectId);
    return removed;
  }

  /** A sink went away: drop all of its subscriptions. */
  dropSink(sink: LogSink): void {
    for (const runId of [...this.runSinks.keys()]) this.unsubscribeRun(sink, runId);
    for (const projectId of [...this.projectSinks.keys()]) this.unsubscribeProject(sink, projectId);
  }

  /**
   * A removed run: its project's subscribers and its own are told, each sink once (one connection
   * following both gets one `run_removed`). Each run subscription ends with it, as with `complete`:
   * nothing more for that run follows, a paused or catching-up reader stops where it is, and the
   * sink frees its slot (an SSE response ends). A subscribe still under way fails `not_found`.
   */
  runRemoved(projectId: number, runId: number, reason: RemovalReason): void {
    const frame = JSON.stringify({ type: 'run_removed', project_id: projectId, run_id: runId, reason } satisfies RunRemovedMessage);
    const followers = [...(this.runSinks.get(runId)?.keys() ?? [])];
    const recipients = new Set<LogSink>([...(this.projectSinks.get(projectId) ?? []), ...followers]);
    for (const sink of recipients) if (!sink.closed) sink.send('run_removed', frame);
    for (const sink of followers) {
      this.unsubscribeRun(sink, runId);
      sink.subscriptionEnded?.(runId);
    }
    const pending = this.pending.get(runId);
    if (pending) pending.removed = true;
  }

  /** For the metrics: live subscriptions, and run subscribers whose socket is too full to send to. */
  subscriptionStats(): { run: number; project: number; paused: number } {
    let run = 0;
    let paused = 0;
    for (const sinks of this.runSinks.values()) {
      run += sinks.size;
      for (const sink of sinks.keys()) if (!sink.closed && sink.congested()) paused++;
    }
    let project = 0;
    for (const sinks of this.projectSinks.values()) project += sinks.size;
    return { run, project, paused };
  }

  async close(): Promise<void> {
    for (const sinks of this.runSinks.values()) for (const sink of sinks.keys()) sink.end?.();
    await Promise.all([...this.tails.values()].map((tail) => tail.close()));
    this.tails.clear();
  }

  /** The run's reader, opened if need be, held for one subscribe in progress. */
  private hold(run: RunRow): { tail: RunTail; created: boolean } {
    const existing = this.tails.get(run.id);
    if (existing) {
      this.holds.set(existing, this.holds.get(existing)! + 1);
      return { tail: existing, created: false };
    }
    const source = this.sourceOf(run);
    const tail = new RunTail({ runId: run.id, source, maxLineBytes: this.config.maxLineBytes, onIdle: () => this.releaseIfIdle(tail) });
    this.tails.set(run.id, tail);
    this.holds.set(tail, 1);
    if (isTerminal(run.status)) tail.finishAt({ ...completeOf(run), next: run.log_size });
    else this.unwatch.set(tail, source.watch(() => pumpTail(tail)));
    return { tail, created: true };
  }

  /**
   * The one way a reader is released: once nobody follows it (subscribers that got `complete` or
   * `log_reset` have left it) and no subscribe holds it.
   */
  private releaseIfIdle(tail: RunTail): void {
    if (this.tails.get(tail.runId) !== tail || tail.subscribers.size > 0 || this.holds.get(tail)! > 0) return;
    this.tails.delete(tail.runId);
    this.holds.delete(tail);
    this.unwatch.get(tail)?.();
    this.unwatch.delete(tail);
    tail.close().catch((error: unknown) => debug('run %d: closing its reader failed: %s', tail.runId, (error as Error).message));
  }

  /** A run was created or changed: `run` messages to its followers; `complete` once it has ended. */
  runChanged(run: RunRow): void {
    const frame = runFrame(this.runJson(run));
    const recipients = new Set<LogSink>([...(this.projectSinks.get(run.project_id) ?? []), ...(this.runSinks.get(run.id)?.keys() ?? [])]);
    for (const sink of recipients) if (!sink.closed) sink.send('run', frame);
    const tail = this.tails.get(run.id);
    if (tail && !tail.isFinal) {
      if (isTerminal(run.status)) tail.end(run.log_size, completeOf(run));
      else pumpTail(tail);
    }
  }
}
