import type { Redis } from '../logs/redisClient.js';
import type pino from 'pino';
import type { Config } from '../config.js';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { LeaseLostError } from '../errors.js';
import { backoffMs } from '../retry.js';
import { archiveKey, archiveTimesKey, type ObjectStore } from '../logs/archive.js';
import { LogShipper } from '../logs/logShipper.js';
import { ChunkUploader, deleteChunks, readChunkMark } from '../logs/liveChunks.js';
import { expireStream, shippedSize } from '../logs/redisLogStream.js';
import { LogWatcher } from '../logs/logWatcher.js';
import { runFiles } from '../paths.js';
import { LocalLauncher } from '../runs/localLauncher.js';
import { parsePlan } from '../runs/plan.js';
import { RunSettler } from '../runs/settle.js';
import { isTerminal, type RunFence, type RunRow } from '../store/runs.js';
import type { PostgresStore } from '../store/postgres/store.js';
import { notifyRun, parseWorkNotice, WORK_CHANNEL } from '../store/postgres/notify.js';
import type { PgListener } from '../store/postgres/listener.js';
import { killProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { TOKEN_VARIABLE } from '../../pipeline-runner/state.js';
import { whileArchiving } from '../logs/archiveClaim.js';
import { WorkerAliveFile } from './aliveFile.js';
import { OwedArchives, type OwedLog } from './owedArchives.js';
import { ClaimNotices } from './claimNotices.js';
import { WorkerLeases } from './leases.js';
import { ProjectSecrets } from '../secrets/projectSecrets.js';
import { SecretBox, UnsealError } from '../secrets/secretBox.js';

/** How stale a running run's `log_size` may be on a hub. */
const SIZE_RECORD_MS = 1000;
/** How often the worker looks for logs it owes the archive (it looks at each with backoff). */
const OWED_LOOK_MS = 1000;

/**
 * A worker (cluster mode): claims runs from PostgreSQL, carries them out with today's runner (the
 * log file on this machine is the source of truth), ships each log to its Redis stream as it grows,
 * records how each run ended once its whole log is shipped, heartbeats, and cancels what a hub asks.
 * Each claim is a lease (issue 22): every write about the run carries it, and a run whose lease is
 * lost, or cannot be renewed in time, has its steps killed and nothing more recorded.
 */
export class Worker {
  private readonly launcher: LocalLauncher;
  private readonly settler: RunSettler;
  private readonly watcher = new LogWatcher();
  private readonly shippers = new Map<number, { shipper: LogShipper; chunks: ChunkUploader; stop: () => void }>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** the logs this worker owes the archive, on its disk: a restart forgets none */
  private readonly owed: OwedArchives;
  /** runs whose log is being archived now */
  private readonly archiving = new Set<number>();
  /** owed logs not to look at again before `at` (an archive that failed, a run not ended yet) */
  private readonly owedLater = new Map<number, { looks: number; at: number }>();
  private settlingOwed = false;
  private readonly leases: WorkerLeases;
  /** rewritten at each renewal; the runners stop their steps when it stops changing */
  private readonly alive: WorkerAliveFile;
  private readonly secrets: ProjectSecrets;
  /** runs whose final flush is done: the stream's length it left */
  private readonly flushed = new Map<number, number>();
  /** ended runs whose slot was given back before their end could be recorded (Redis away) */
  private readonly released = new Set<number>();
  /** claim notices, damped: every idle worker hears each one */
  private readonly claimNotices = new ClaimNotices({ claim: () => this.claimNow(), hasFreeSlot: () => this.running < this.config.workerSlots });

  private running = 0;
  private claiming = false;
  /** a claim was asked for while one was under way: it looks once more when done */
  private claimAgain = false;
  private listener: PgListener | null = null;
  private closed = false;

  constructor(private readonly config: Config, private readonly store: PostgresStore, private readonly redis: Redis, private readonly objects: ObjectStore, private readonly log: pino.Logger) {
    this.alive = new WorkerAliveFile(config.logsDir, config.workerId, config.workerTimeoutMs);
    this.owed = new OwedArchives(config.logsDir);
    this.leases = new WorkerLeases(store.cluster, config.workerId, config.workerTimeoutMs, { lost: (runId, why) => this.leaseLost(runId, why), renewed: (sentAt) => this.touchAlive(sentAt) }, log);
    this.settler = new RunSettler(config, store.runs, {
      changed: (run) => notifyRun(store, run.id),
      ended: () => this.claimNow(),
      beforeFinish: (run) => this.finishShipping(run.id),
      leaseLost: (runner) => this.leaseLost(runner.runId, 'a write under its lease was refused'),
    // The end's size: what the final flush left in the stream (readers read the stream); the stream's length otherwise.
    }, log, async (run) => this.flushed.get(run.id) ?? shippedSize(redis, run.id));
    // Runs' secrets are opened here, for their steps; the database holds them sealed.
    this.secrets = new ProjectSecrets(store.secrets, SecretBox.fromFile(config.secretKeyFile));
    this.launcher = new LocalLauncher(config, {
      onProgress: (runner, state) => this.settler.runnerOnProgress(runner, state),
      onEnded: async (runner) => {
        this.leases.ending(runner.runId);
        await this.settler.runnerOnEnded(runner);
        if (runner.leaseLost) this.dropShipping(runner.runId);
        // At the size its record says, whoever recorded the end (this worker, or a hub that gave the
        // run up: the file may hold more than was shipped); a lost run not yet given up, later.
        await this.settleOwedRun({ projectId: runner.projectId, runId: runner.runId });
        this.leases.release(runner.runId);
        this.releaseSlot(runner.runId);
        this.released.delete(runner.runId);
        this.flushed.delete(runner.runId);
      },
    }, log, undefined, (projectId) => this.secrets.values(projectId));
  }

  get id(): string {
    return this.config.workerId;
  }

  /**
   * Heartbeats, re-attaches to this worker's runs whose lease it can still renew (a restart; a
   * runner whose lease is gone is killed and left to the hubs), then renews its leases, claims and
   * follows cancels.
   */
  async start(): Promise<void> {
    await this.store.cluster.heartbeat(this.id);
    const mine = await this.store.cluster.runsOfWorker(this.id);
    const sent = performance.now();
    const renewed = await this.store.cluster.renewLeases(this.id, mine.map((run) => ({ runId: run.id, epoch: run.lease_epoch })), this.config.workerTimeoutMs);
    this.touchAlive(sent); // before its runners' watches run out (a restart within the lease)
    for (const run of mine) {
      if (!renewed.some((lease) => lease.runId === run.id)) {
        if (run.runner_token) killProcessesWithEnv(TOKEN_VARIABLE, run.runner_token);
        this.log.warn({ run_id: run.id }, 'a run of this worker whose lease is lost: its processes are killed, the hubs record its end');
        continue;
      }
      const fence: RunFence = { workerId: this.id, epoch: run.lease_epoch };
      this.leases.hold(run.id, run.lease_epoch, sent);
      this.running++;
      this.ship(run, fence);
      this.launcher.reattach(run, fence);
      this.log.info({ run_id: run.id }, 're-attached to a run of this worker');
    }
    this.leases.start();
    const every = (ms: number, work: () => Promise<unknown>) => {
      const timer = setInterval(() => void work().catch((error: unknown) => this.log.warn({ err: error }, 'worker duty failed; trying again')), ms);
      this.timers.push(timer);
    };
    // Claims and cancels are heard of by LISTEN (a trigger sends them); the poll is the backstop.
    this.listener = this.store.listen(WORK_CHANNEL, {
      notice: (payload) => this.workOnNotice(payload),
      // LISTEN is (back) in place: notices sent while it was away are lost, so look once.
      connected: () => {
        this.claimNow();
        this.cancelNow();
      },
    });
    every(this.config.workerPollMs, () => this.claim());
    every(this.config.workerPollMs, () => this.cancelAsked());
    every(OWED_LOOK_MS, () => this.settleOwed());
    await this.claim();
    this.settleOwed().catch((error: unknown) => this.log.warn({ err: error }, 'looking for logs owed to the archive failed; the next look tries again'));
  }

  /** Remembers on disk that the run's log is owed to the archive; a disk that refuses leaves it to memory and the hubs' sweeper. */
  private remember(owed: OwedLog): void {
    try {
      this.owed.owe(owed);
    } catch (error) {
      this.log.warn({ err: error, run_id: owed.runId }, 'could not remember on disk that a log is owed to the archive');
    }
  }

  private touchAlive(sentAt: number): void {
    try {
      this.alive.touch(sentAt);
    } catch (error) {
      // its runners stop their steps if this keeps failing (a full disk): as safe as it is loud
      this.log.warn({ err: error, file: this.alive.file }, 'the file the runners watch for lease renewals could not be written');
    }
  }

  private workOnNotice(payload: string): void {
    const notice = parseWorkNotice(payload);
    if (notice?.kind === 'cancel') {
      if (notice.workerId === this.id) this.cancelNow();
    } else if (notice) this.claimNotices.hear(notice);
  }

  private cancelNow(): void {
    this.cancelAsked().catch((error: unknown) => this.log.warn({ err: error }, 'reading cancels failed; the next poll tries again'));
  }

  /** Claims runs while it has free slots. */
  /** A slot came free: claim now; if the store fails, the next poll claims. */
  private claimNow(): void {
    this.claim().catch((error: unknown) => this.log.warn({ err: error }, 'claiming runs failed; the next poll tries again'));
  }

  private async claim(): Promise<void> {
    if (this.closed) return;
    if (this.claiming) {
      // A run queued just after the claim under way found none would wait for the next poll.
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    this.claimAgain = false;
    try {
      while (this.running < this.config.workerSlots && !this.closed) {
        const run = await this.launcher.launchNext(async (runner) => {
          const sent = performance.now();
          const claimed = await this.store.cluster.claimNext(this.id, runner, this.config.workerTimeoutMs);
          if (!claimed) return null;
          this.leases.hold(claimed.id, claimed.lease_epoch, sent);
          const fence: RunFence = { workerId: this.id, epoch: claimed.lease_epoch };
          let prepared;
          try {
            prepared = await this.prepare(claimed, fence);
          } catch (error) {
            // The database failed us before the run started: let the lease go, so a hub ends the run
            // once it expires (else it would be renewed for ever with nothing carrying it out).
            this.leases.release(claimed.id);
            throw error;
          }
          if (!prepared) {
            this.leases.release(claimed.id);
            return null;
          }
          // Lost while its project and secrets were read (the database stalled): never started here; the hubs end it.
          if (!this.leases.holds(claimed.id)) return null;
          this.remember({ projectId: claimed.project_id, runId: claimed.id });
          this.running++;
          this.ship(claimed, fence);
          notifyRun(this.store, claimed.id);
          return { run: claimed, fence, ...prepared, lease: this.alive.spec(sent) };
        });
        if (!run) break;
      }
    } finally {
      this.claiming = false;
    }
    if (this.claimAgain) await this.claim();
  }

  /** What a claimed run needs to start (its project, plan and secrets); null when it cannot (recorded as failed). */
  private async prepare(claimed: RunRow, fence: RunFence) {
    const project = await this.store.projects.get(claimed.project_id);
    const plan = parsePlan(claimed.plan);
    if (!project || !plan) {
      await this.settler.finish(claimed, { status: 'failed', error_message: project ? 'The run has no steps recorded' : 'Its project was deleted' }, fence);
      return null;
    }
    // A secret this worker's key cannot open is the run's failure, said at its start (the launcher
    // reads them again and records why); a database that fails is this claim's.
    const secrets = await this.secrets.values(project.id).catch((error: unknown) => {
      if (error instanceof UnsealError) return undefined;
      throw error;
    });
    return { project, plan, secrets };
  }

  private async cancelAsked(): Promise<void> {
    for (const runId of await this.store.cluster.cancelsFor(this.id)) this.launcher.cancel(runId);
  }

  /**
   * The lease on a run is lost (refused by the database or its stream), or its renewal is overdue:
   * nothing more goes to its stream, and its runner and all it started are killed at once. The
   * hubs record its end once the lease has expired by the database's clock.
   */
  private leaseLost(runId: number, why: string): void {
    // Its runner has ended: nothing to stop, and whether its end went in is the settler's to say
    // (a late refusal of a write sent before its end was recorded must not lose its archive).
    if (this.leases.isEnding(runId)) return;
    const held = this.leases.holds(runId) || this.shippers.has(runId);
    this.leases.release(runId);
    this.dropShipping(runId);
    const followed = this.launcher.stop(runId);
    if (!held && !followed) return; // already let go (a late refusal of a write sent before)
    this.log.warn({ run_id: runId, why, followed }, 'lease on a run lost: its steps are stopped and nothing more is recorded about it');
  }

  /** Ships a run's log as it grows (a watcher hint, or the poll behind it), under the worker's lease. */
  private ship(run: RunRow, fence: RunFence): void {
    if (this.shippers.has(run.id)) return;
    const { log: file, times } = runFiles(this.config.logsDir, run.project_id, run.id);
    const shipper = new LogShipper(this.redis, run.id, file, times, fence.epoch);
    // Full chunks go to the object store and leave Redis: Redis holds at most two chunks of a running log.
    const chunks = new ChunkUploader(this.redis, this.objects, run.id, file, this.config.logChunkBytes, fence.epoch, times);
    // A running run's size, for hubs (its file is here): recorded at most once per interval, and
    // once more after the last change.
    let recorded = 0;
    let pending: NodeJS.Timeout | null = null;
    const record = () => {
      pending = null;
      if (shipper.size === recorded || !this.shippers.has(run.id)) return;
      recorded = shipper.size;
      this.store.runs.update(run.id, { log_size: recorded }, fence).then((updated) => {
        if (!updated) this.leaseLost(run.id, 'its log size was refused under its lease');
      }, () => {}); // the next one will do
    };
    const shipped = () => {
      pending ??= setTimeout(record, SIZE_RECORD_MS);
      chunks.advance({ log: shipper.size, times: shipper.timesSize }).catch((error: unknown) => {
        if (error instanceof LeaseLostError) this.leaseLost(run.id, error.message);
        else this.log.warn({ err: error, run_id: run.id }, 'moving a chunk of a running log to the object store failed; the next ship tries again (Redis keeps the bytes meanwhile)');
      });
    };
    const hint = () => {
      shipper.ship().then(shipped, (error: unknown) => {
        if (error instanceof LeaseLostError) this.leaseLost(run.id, error.message);
        else this.log.warn({ err: error, run_id: run.id }, 'shipping a log failed; the next hint tries again');
      });
    };
    // The times file too: its last record comes a moment after the log's last write.
    this.watcher.watch(file, hint);
    this.watcher.watch(times, hint);
    this.shippers.set(run.id, {
      shipper,
      chunks,
      stop: () => {
        this.watcher.unwatch(file);
        this.watcher.unwatch(times);
      },
    });
  }

  /** Nothing more of the run's log goes to its stream (its lease is lost, or it is all there). */
  private dropShipping(runId: number): void {
    const entry = this.shippers.get(runId);
    if (!entry) return;
    entry.stop();
    entry.shipper.close();
    entry.chunks.close().catch(() => {}); // its pass under way ends at the next chunk
    this.shippers.delete(runId);
  }

  /** A run's slot is free (once per run): the next run may be claimed. */
  private releaseSlot(runId: number): void {
    if (this.released.has(runId)) return;
    this.released.add(runId);
    this.running = Math.max(0, this.running - 1);
    this.claimNow();
  }

  /**
   * The run has ended: its whole log goes to the stream before its end is recorded, since hubs
   * announce `complete` at the recorded size reading the stream. Redis away past the deadline: the
   * slot is given back (the runner is gone; the bytes are safe in the log file here), and this
   * throws, so the end is recorded later (the launcher tries again with backoff; the shipper's own
   * retries go on meanwhile). The run stays `running` until its log is where readers read it. A
   * refused lease throws at once (the settler records nothing more then).
   */
  private async finishShipping(runId: number): Promise<void> {
    const entry = this.shippers.get(runId);
    if (!entry) return;
    try {
      this.flushed.set(runId, await entry.shipper.flush(this.config.shipDeadlineMs));
      // No chunk is recorded after this: the log is archived next, and its stream set to expire.
      await entry.chunks.close();
    } catch (error) {
      if (!(error instanceof LeaseLostError) && !this.released.has(runId)) this.log.warn({ err: error, run_id: runId }, 'the end of a log could not reach Redis in time; its slot is given back and its end will be recorded once Redis has it');
      this.releaseSlot(runId);
      throw error;
    }
    this.dropShipping(runId);
  }

  /**
   * A finished log goes to the archive from the file here; only once it is there does its stream
   * expire (GitLab lost job logs by expiring live chunks before archiving them). `size`: the run's
   * recorded size (a run a hub gave up is recorded at what its stream had; the file may hold more).
   * A failure is tried again by the look at owed logs, with backoff, until it succeeds.
   */
  private async archive(owed: OwedLog, size: number): Promise<void> {
    const { projectId, runId } = owed;
    try {
      const files = runFiles(this.config.logsDir, projectId, runId);
      // The claim first: while it holds, the hubs' sweeper leaves the log to this worker, however long the store takes.
      await whileArchiving(this.redis, runId, this.id, async () => {
        // Archived already (a hub gave the run up and archived its stream): the same bytes.
        const archived = await this.objects.open(archiveKey(projectId, runId));
        if (archived) {
          await archived.close();
          return;
        }
        // The times first: once the log is archived, readers look for its times there.
        if (fs.existsSync(files.times)) await this.objects.put(archiveTimesKey(projectId, runId), files.times);
        const log = await this.owed.prefixOf(files.log, size);
        try {
          await this.objects.put(archiveKey(projectId, runId), log.file);
        } finally {
          await log.done();
        }
        const mark = await readChunkMark(this.redis, runId);
        await expireStream(this.redis, runId);
        // Readers of its chunks read on from the archive.
        await deleteChunks(this.objects, runId, mark);
      });
      this.paid(owed);
    } catch (error) {
      const looks = this.lookLater(runId);
      this.log.warn({ err: error, run_id: runId, tries: looks }, 'archiving a finished log failed; it is tried again from the file here (and the hubs\' sweeper may archive it from its stream)');
    }
  }

  private paid(owed: OwedLog): void {
    this.owedLater.delete(owed.runId);
    try {
      this.owed.paid(owed);
    } catch (error) {
      this.log.warn({ err: error, run_id: owed.runId }, 'could not forget an archived log on disk; the next look finds it archived');
    }
  }

  /** The owed log is looked at again after a backoff (doubling to a minute); returns how many looks it has had. */
  private lookLater(runId: number): number {
    const looks = (this.owedLater.get(runId)?.looks ?? 0) + 1;
    this.owedLater.set(runId, { looks, at: Date.now() + backoffMs(looks - 1, 1000, 60_000) });
    return looks;
  }

  /**
   * Archives the owed logs of ended runs that nobody archived: one whose archive failed, one this
   * worker was killed before archiving (found on its disk when it is back), one a hub gave up.
   * Runs in hand (leased here, being archived) are left to their own path.
   */
  private async settleOwed(): Promise<void> {
    if (this.settlingOwed || this.closed) return;
    this.settlingOwed = true;
    try {
      for (const owed of this.owed.list()) {
        if (this.closed) return;
        if (this.leases.holds(owed.runId) || this.shippers.has(owed.runId)) continue;
        if ((this.owedLater.get(owed.runId)?.at ?? 0) > Date.now()) continue;
        await this.settleOwedRun(owed);
      }
    } finally {
      this.settlingOwed = false;
    }
  }

  /**
   * One owed log: archived at its run's recorded size once the run has ended (once at a time); a
   * failure is looked at again after a backoff. Never throws.
   */
  private async settleOwedRun(owed: OwedLog): Promise<void> {
    if (this.archiving.has(owed.runId)) return;
    this.archiving.add(owed.runId);
    try {
      await this.settleEndedRun(owed);
    } catch (error) {
      this.log.warn({ err: error, run_id: owed.runId, tries: this.lookLater(owed.runId) }, 'looking at a log owed to the archive failed; trying again');
    } finally {
      this.archiving.delete(owed.runId);
    }
  }

  private async settleEndedRun(owed: OwedLog): Promise<void> {
    const run = await this.store.runs.get(owed.runId);
    // Purged: nothing reads it. (A run is claimed once: no other worker wrote another log of it.)
    if (!run) return this.paid(owed);
    // Its lease lost and not yet given up: a hub records its end once the lease has expired.
    if (!isTerminal(run.status)) return void this.lookLater(run.id);
    // Empty: readers serve it so without an archive.
    if (run.log_size === 0) return this.paid(owed);
    await this.archive(owed, run.log_size);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.listener?.close();
    this.claimNotices.close();
    this.leases.close();
    await this.launcher.close();
    await this.watcher.close();
  }
}
