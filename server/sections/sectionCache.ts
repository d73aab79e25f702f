import fs from 'node:fs';
import path from 'node:path';
import { debuglog } from 'node:util';
import type { SectionFiles } from './sectionFile.js';

const debug = debuglog('hub:sections');
const RECORDS = '.sections';
const NAMES = '.section-names';

/**
 * Section files kept where the logs are not (a cluster hub: its logs are in Redis and the archive),
 * in a folder of this hub's own, bounded: the `limit` finished runs used last keep theirs, an
 * older one's are deleted. Files being written (a run indexed now) are held, not counted, and
 * never deleted under their writer. Run ids are the cluster's, unique, so a file named after one
 * never belongs to another run.
 */
export class SectionCache {
  /** finished runs' files, least recently used first (a Map keeps insertion order) */
  private readonly used = new Map<number, true>();
  /** runs whose files an indexer writes now, with how many hold each */
  private readonly held = new Map<number, number>();

  private constructor(private readonly dir: string, private readonly limit: number) {}

  /** Opens the folder; files left by an earlier start count as used in the order they were written. */
  static open(dir: string, limit: number): SectionCache {
    fs.mkdirSync(dir, { recursive: true });
    const cache = new SectionCache(dir, limit);
    const found: { runId: number; mtime: number }[] = [];
    for (const name of fs.readdirSync(dir)) {
      const match = /^(\d+)\.sections$/.exec(name);
      if (!match) continue;
      const stat = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
      if (stat) found.push({ runId: Number(match[1]), mtime: stat.mtimeMs });
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const { runId } of found) cache.used.set(runId, true);
    cache.evict();
    return cache;
  }

  filesOf(runId: number): SectionFiles {
    return { records: path.join(this.dir, `${runId}${RECORDS}`), names: path.join(this.dir, `${runId}${NAMES}`) };
  }

  /** An indexer writes the run's files from now on: they are not deleted until it lets go. */
  hold(runId: number): void {
    this.held.set(runId, (this.held.get(runId) ?? 0) + 1);
    this.used.delete(runId);
  }

  /** The indexer is done: the run's files are the ones used last. */
  release(runId: number): void {
    const count = (this.held.get(runId) ?? 1) - 1;
    if (count > 0) {
      this.held.set(runId, count);
      return;
    }
    this.held.delete(runId);
    this.touch(runId);
  }

  /** The run's files were read: they are the ones used last (the oldest beyond the limit go). */
  touch(runId: number): void {
    if (this.held.has(runId)) return;
    this.used.delete(runId);
    this.used.set(runId, true);
    this.evict();
  }

  /** The run is gone: so are its files (unless an indexer still writes them; it lets go, then they age out). */
  remove(runId: number): void {
    if (this.held.has(runId) || !this.used.delete(runId)) return;
    this.deleteFiles(runId);
  }

  /** Runs whose files are kept now (held or used), for tests and metrics. */
  get size(): number {
    return this.used.size + this.held.size;
  }

  private evict(): void {
    while (this.used.size > this.limit) {
      const oldest = this.used.keys().next().value as number;
      this.used.delete(oldest);
      this.deleteFiles(oldest);
    }
  }

  private deleteFiles(runId: number): void {
    const files = this.filesOf(runId);
    // At once, not later: a request right after may index the run again into the same files.
    for (const file of [files.records, files.names]) {
      try {
        fs.rmSync(file, { force: true });
      } catch (error) {
        debug('deleting %s failed: %s', file, (error as Error).message);
      }
    }
  }
}
