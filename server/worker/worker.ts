import type { Redis } from 'ioredis';
import type pino from 'pino';
import type { Config } from '../config.js';
import fs from 'node:fs';
import { archiveKey, archiveTimesKey, type ObjectStore } from '../logs/archive.js';
import { LogShipper } from '../logs/logShipper.js';
import { expireStream } from '../logs/redisLogStream.js';
import { LogWatcher } from '../logs/logWatcher.js';
import { runFiles } from '../paths.js';
import { LocalLauncher } from '../runs/localLauncher.js';
import { parsePlan } from '../runs/plan.js';
import { RunSettler } from '../runs/settle.js';
import type { RunRow } from '../store/runs.js';
import type { PostgresStore } from '../store/postgres/store.js';
import { notifyRun } from '../store/postgres/notify.js';
import { ProjectSecrets } from '../secrets/projectSecrets.js';
import { SecretBox } from '../secrets/secretBox.js';

const CLAIM_POLL_MS = 250;
/** How stale a running run's `log_size` may be on a hub. */
const SIZE_RECORD_MS = 1000;

/**
 * A worker (cluster mode): claims runs from PostgreSQL, carries them out with today's runner (the
 * log file on this machine is the source of truth), ships each log to its Redis stream as it grows,
 * records how each run ended once its whole log is shipped, heartbeats, and cancels what a hub asks.
 */
export class Worker {
  private readonly launcher: LocalLauncher;
  private readonly settler: RunSettler;
  private readonly watcher = new LogWatcher();
  private readonly shippers = new Map<number, { shipper: LogShipper; stop: () => void }>();
  private readonly timers: NodeJS.Timeout[] = [];

  private running = 0;
  private claiming = false;
  private closed = false;

  constructor(private readonly config: Config, private readonly store: PostgresStore, private readonly redis: Redis, private readonly objects: ObjectStore, private readonly log: pino.Logger) {
    this.settler = new RunSettler(config, store.runs, {
      changed: (run) => notifyRun(store, run.id),
      ended: () => this.claimNow(),
      beforeFinish: (run) => this.finishShipping(run.id),
    }, log);
    // Runs' secrets are opened here, for their steps; the database holds them sealed.
    const secrets = new ProjectSecrets(store.secrets, SecretBox.fromFile(config.secretKeyFile));
    this.launcher = new LocalLauncher(config, {
      onProgress: (runner, state) => this.settler.runnerOnProgress(runner, state),
      onEnded: async (runner) => {
        await this.settler.runnerOnEnded(runner);
        await this.archive(runner.projectId, runner.runId);
        this.running = Math.max(0, this.running - 1);
        this.claimNow();
      },
    }, log, undefined, (projectId) => secrets.values(projectId));
  }

  get id(): string {
    return this.config.workerId;
  }

  /** Heartbeats, re-attaches to this worker's runs (a restart), then claims and follows cancels. */
  async start(): Promise<void> {
    await this.store.cluster.heartbeat(this.id);
    for (const run of await this.store.runs.listActive()) {
      if (run.status !== 'running' || (run as { worker_id?: string }).worker_id !== this.id) continue;
      this.running++;
      this.ship(run);
      this.launcher.reattach(run);
      this.log.info({ run_id: run.id }, 're-attached to a run of this worker');
    }
    const every = (ms: number, work: () => Promise<unknown>) => {
      const timer = setInterval(() => void work().catch((error: unknown) => this.log.warn({ err: error }, 'worker duty failed; trying again')), ms);
      this.timers.push(timer);
    };
    every(Math.max(100, Math.floor(this.config.workerTimeoutMs / 3)), () => this.store.cluster.heartbeat(this.id));
    every(CLAIM_POLL_MS, () => this.claim());
    every(CLAIM_POLL_MS, () => this.cancelAsked());
    await this.claim();
  }

  /** Claims runs while it has free slots. */
  /** A slot came free: claim now; if the store fails, the next poll claims. */
  private claimNow(): void {
    this.claim().catch((error: unknown) => this.log.warn({ err: error }, 'claiming runs failed; the next poll tries again'));
  }

  private async claim(): Promise<void> {
    if (this.claiming || this.closed) return;
    this.claiming = true;
    try {
      while (this.running < this.config.workerSlots && !this.closed) {
        const run = await this.launcher.launchNext(async (runner) => {
          const claimed = await this.store.cluster.claimNext(this.id, runner);
          if (!claimed) return null;
          const project = await this.store.projects.get(claimed.project_id);
          const plan = parsePlan(claimed.plan);
          if (!project || !plan) {
            await this.settler.finish(claimed, { status: 'failed', error_message: project ? 'The run has no steps recorded' : 'Its project was deleted' });
            return null;
          }
          this.running++;
          this.ship(claimed);
          notifyRun(this.store, claimed.id);
          return { run: claimed, project, plan };
        });
        if (!run) return;
      }
    } finally {
      this.claiming = false;
    }
  }

  private async cancelAsked(): Promise<void> {
    for (const runId of await this.store.cluster.cancelsFor(this.id)) this.launcher.cancel(runId);
  }

  /** Ships a run's log as it grows (a watcher hint, or the poll behind it). */
  private ship(run: RunRow): void {
    if (this.shippers.has(run.id)) return;
    const { log: file, times } = runFiles(this.config.logsDir, run.project_id, run.id);
    const shipper = new LogShipper(this.redis, run.id, file, times);
    // A running run's size, for hubs (its file is here): recorded at most once per interval, and
    // once more after the last change.
    let recorded = 0;
    let pending: NodeJS.Timeout | null = null;
    const record = () => {
      pending = null;
      if (shipper.size === recorded) return;
      recorded = shipper.size;
      this.store.runs.update(run.id, { log_size: recorded }).catch(() => {}); // the next one will do
    };
    const shipped = () => {
      pending ??= setTimeout(record, SIZE_RECORD_MS);
    };
    const hint = () => {
      shipper.ship().then(shipped, (error: unknown) => this.log.warn({ err: error, run_id: run.id }, 'shipping a log failed; the next hint tries again'));
    };
    // The times file too: its last record comes a moment after the log's last write.
    this.watcher.watch(file, hint);
    this.watcher.watch(times, hint);
    this.shippers.set(run.id, {
      shipper,
      stop: () => {
        this.watcher.unwatch(file);
        this.watcher.unwatch(times);
      },
    });
  }

  /** The run has ended: its whole log goes to the stream before its end is recorded. */
  private async finishShipping(runId: number): Promise<void> {
    const entry = this.shippers.get(runId);
    if (!entry) return;
    await entry.shipper.flush();
    entry.stop();
    entry.shipper.close();
    this.shippers.delete(runId);
  }

  /**
   * A finished log goes to the archive; only once it is there does its stream expire (GitLab lost
   * job logs by expiring live chunks before archiving them).
   */
  private async archive(projectId: number, runId: number): Promise<void> {
    try {
      const files = runFiles(this.config.logsDir, projectId, runId);
      // The times first: once the log is archived, readers look for its times there.
      if (fs.existsSync(files.times)) await this.objects.put(archiveTimesKey(projectId, runId), files.times);
      await this.objects.put(archiveKey(projectId, runId), files.log);
      await expireStream(this.redis, runId);
    } catch (error) {
      this.log.warn({ err: error, run_id: runId }, 'archiving a finished log failed; its stream stays');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.launcher.close();
    await this.watcher.close();
  }
}
