import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from './redisClient.js';
import type pino from 'pino';
import { isTerminal, type RunRow, type RunStore } from '../store/runs.js';
import { archiveKey, archiveTimesKey, type ObjectStore } from './archive.js';
import type { LogHandle } from './logSource.js';
import { isBeingArchived } from './archiveClaim.js';
import { deleteChunks, openLiveLog, openLiveTimes, readChunkMark } from './liveChunks.js';
import { expireStream, listUnexpiredStreams } from './redisLogStream.js';

/** A run is swept once its end is this old (or `everyMs`, if shorter) and no worker claims its archiving. */
const SWEEP_AFTER_END_MS = 5000;
/** The advisory lock of the sweep: one hub of the cluster sweeps at a time. */
const SWEEP_LOCK = 7_461_002;
const COPY_CHUNK = 1024 * 1024;

export interface ArchiveSweeperDeps {
  redis: Redis;
  runs: RunStore;
  archive: ObjectStore;
  /** runs `work` if no other hub is sweeping (a PostgreSQL advisory lock); false if one is */
  runExclusive(key: number, work: () => Promise<void>): Promise<boolean>;
  /** a run's record was corrected (its log_size): tell the hubs */
  changed(run: RunRow): void;
  log: pino.Logger;
}

/**
 * Archives the logs nobody archived (cluster mode): a worker archives its run's log right after
 * recording its end, but one that dies in between (or a lost worker, whose run a hub ended) leaves it
 * only in its Redis stream, which then never expires. Every `everyMs` one hub (whichever takes the
 * lock) copies such logs from their streams to the archive, then lets the streams expire. It runs on
 * the hubs because they outlive workers and already hold Redis and the archive; a run is swept once
 * its end is a few seconds old and its worker holds no claim on archiving it (archiveClaim.ts), so
 * such a log is in Redis alone for seconds, not minutes (if both archive it, both store the same
 * bytes, whole).
 */
export class ArchiveSweeper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly deps: ArchiveSweeperDeps, private readonly everyMs: number) {}

  start(): void {
    this.timer = setInterval(() => {
      this.sweepNow().catch((error: unknown) => this.deps.log.warn({ err: error }, 'the archive sweep failed; the next one tries again'));
    }, this.everyMs);
    this.timer.unref();
  }

  /** One sweep (at most one at a time on this hub, and in the cluster). */
  sweepNow(): Promise<void> {
    this.sweeping ??= this.deps.runExclusive(SWEEP_LOCK, () => this.sweep()).then(() => {}).finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  /**
   * Archives a run a hub just gave up (its worker lost): nobody else will, and until it is archived
   * its bytes live only in Redis. Not under the sweep's lock: archiving twice stores the same bytes.
   */
  archiveSoon(runId: number): void {
    if (this.closed) return;
    this.sweepRun(runId, Number.POSITIVE_INFINITY).catch((error: unknown) => this.deps.log.warn({ err: error, run_id: runId }, 'archiving a lost worker\'s log failed; the next sweep tries again'));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.sweeping?.catch(() => {});
  }

  private async sweep(): Promise<void> {
    const endedBefore = Date.now() - Math.min(this.everyMs, SWEEP_AFTER_END_MS);
    for await (const ids of listUnexpiredStreams(this.deps.redis)) {
      for (const id of ids) {
        if (this.closed) return;
        // One run that fails (an archive error on its key, a read that timed out) is tried again at
        // the next sweep; the streams after it are not held up.
        await this.sweepRun(id, endedBefore).catch((error: unknown) => this.deps.log.warn({ err: error, run_id: id }, 'archiving a finished log from its stream failed; the next sweep tries again'));
      }
    }
  }

  private async sweepRun(id: number, endedBefore: number): Promise<void> {
    const run = await this.deps.runs.get(id);
    if (!run) {
      // Purged while its stream was being written, or its removal failed: nothing reads it.
      const mark = await readChunkMark(this.deps.redis, id);
      await expireStream(this.deps.redis, id);
      await deleteChunks(this.deps.archive, id, mark);
      return;
    }
    if (!isTerminal(run.status) || Date.parse(run.finished_at ?? run.created_at) > endedBefore) return;
    if (await isBeingArchived(this.deps.redis, id)) return; // its worker is on it
    await this.archiveRun(run);
  }

  /** Copies the stream (and its time records) to the archive, then lets it expire. */
  private async archiveRun(run: RunRow): Promise<void> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hub-sweep-'));
    try {
      // With its chunks: a long run's older times are in the object store, not in Redis.
      const times = await openLiveTimes(this.deps.redis, this.deps.archive, run.id, async () => null);
      if (times) {
        await copyToFile(times, path.join(dir, 'times'));
        await this.deps.archive.put(archiveTimesKey(run.project_id, run.id), path.join(dir, 'times'));
      }
      // The stream with its chunks: a long log's start is in the object store, not in Redis.
      const log = await openLiveLog(this.deps.redis, this.deps.archive, run.id, async () => null);
      if (!log && run.log_size > 0) {
        // Gone from Redis (it lost its data) before anyone archived it: nothing to archive, and the
        // record keeps the size that was shipped (readers are told the log is unavailable).
        this.deps.log.error({ run_id: run.id, recorded: run.log_size }, 'a finished log that was never archived is gone from Redis');
        return;
      }
      const size = log ? await copyToFile(log, path.join(dir, 'log')) : 0;
      if (log) await this.deps.archive.put(archiveKey(run.project_id, run.id), path.join(dir, 'log'));
      if (size !== run.log_size) {
        // Ended before log_size was the stream's length (a lost worker's run recorded as 0): what is archived is the log.
        this.deps.log.warn({ run_id: run.id, recorded: run.log_size, archived: size }, 'a swept log differs from its recorded size; recording the archived size');
        this.deps.changed(await this.deps.runs.update(run.id, { log_size: size }));
      }
      const mark = await readChunkMark(this.deps.redis, run.id);
      await expireStream(this.deps.redis, run.id);
      await deleteChunks(this.deps.archive, run.id, mark);
      this.deps.log.info({ run_id: run.id, bytes: size }, 'archived a finished log that was only in its stream');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
}

/** Copies a handle's bytes, as they are now, to a new file; returns how many. */
async function copyToFile(handle: LogHandle, file: string): Promise<number> {
  const out = await fs.open(file, 'w');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.allocUnsafe(COPY_CHUNK);
    let position = 0;
    while (position < size) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(COPY_CHUNK, size - position), position);
      // Short (a chunk lost from the object store): fail, rather than archive a log with its end cut off.
      if (bytesRead === 0) throw new Error(`the log could be read to byte ${position} of ${size} only`);
      await out.write(buffer, 0, bytesRead);
      position += bytesRead;
    }
    return position;
  } finally {
    await out.close();
    await handle.close();
  }
}
