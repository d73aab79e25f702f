import { debuglog } from 'node:util';
import type { LogSource } from '../logs/logSource.js';
import { isTerminal, type RunRow } from '../store/runs.js';
import type { Section, SectionPage } from '../wire.js';
import { readSectionHeader, readSectionPage, sectionIdBefore, type SectionFiles } from './sectionFile.js';
import { SectionIndexer } from './sectionIndexer.js';

const debug = debuglog('hub:sections');

export interface SectionIndexOptions {
  filesOf(run: RunRow): SectionFiles;
  /** the run's log, with a watcher of its own (the hub's readers come and go with their subscribers) */
  sourceOf(run: RunRow): LogSource;
  /** a batch of sections opened, closed or unfolded, once written */
  changed(runId: number, sections: Section[]): void;
  /**
   * Where the files are a bounded cache (a cluster hub's: see sectionCache.ts) rather than beside
   * the log: told when an indexer writes a run's files, lets go, when they are read, and when the
   * run is gone.
   */
  cache?: { hold(runId: number): void; release(runId: number): void; touch(runId: number): void; remove(runId: number): void };
  /**
   * Running runs are indexed only once asked about (a page, a subscriber that wants sections),
   * then followed to their end; not at start nor at each change. For a cluster's hubs, which each
   * see every run of the cluster: a hub reads only the logs its clients look at.
   */
  onDemand?: boolean;
  /**
   * The run as recorded now. With `onDemand`, a running run's indexer is started from a record
   * read a moment before: the run is read again once the indexer is registered, so an end that
   * was delivered in between (and found no indexer to end) still ends it.
   */
  latest?(runId: number): Promise<RunRow | undefined>;
}

/**
 * The runs' section indexes: one indexer per active run, started when the run starts or is first
 * asked about (a hub restarted under a running run, a finished run never indexed), ended with the
 * run. Pages are read from the section files, so serving a log with any number of sections holds
 * one page.
 */
export class SectionIndex {
  private readonly indexers = new Map<number, { indexer: SectionIndexer; unwatch: () => void }>();
  private closed = false;

  constructor(private readonly options: SectionIndexOptions) {}

  /** A run changed: an active run is indexed as its log grows; an ended one to its end. */
  runChanged(run: RunRow): void {
    if (this.closed) return;
    if (!isTerminal(run.status)) {
      if (run.status === 'running' && (!this.options.onDemand || this.indexers.has(run.id))) this.indexerOf(run).pump();
      return;
    }
    const entry = this.indexers.get(run.id);
    if (entry) this.finish(run, entry.indexer).catch((error: unknown) => debug('run %d: %s', run.id, (error as Error).message));
  }

  /**
   * After a (re)start: the runs running now are indexed at once, from their logs' start (the parser's
   * open sections were not kept), so their sections come without waiting for the run's next change
   * or a request. Finished runs are indexed when first asked about (see page).
   */
  resume(active: readonly RunRow[]): void {
    if (this.options.onDemand) return;
    for (const run of active) if (!this.closed && run.status === 'running') this.indexerOf(run).pump();
  }

  /** A client subscribed to the run's sections: a running run is indexed (and followed) from now on. */
  want(run: RunRow): void {
    if (!this.closed && run.status === 'running') this.indexerOf(run).pump();
  }

  /**
   * Sections after id `after` (and, with `from`, starting at or after that byte), at most `limit`;
   * a finished run never indexed is indexed first.
   */
  async page(run: RunRow, after: number, limit: number, from?: number): Promise<SectionPage> {
    const files = this.options.filesOf(run);
    if (isTerminal(run.status)) {
      const header = await readSectionHeader(files);
      if (!header?.complete) await this.finish(run, this.indexerOf(run));
    } else if (run.status === 'running' && !this.closed) {
      this.indexerOf(run).pump();
    }
    this.options.cache?.touch(run.id);
    if (from !== undefined) after = Math.max(after, await sectionIdBefore(files, from));
    const page = await readSectionPage(files, after, limit);
    if (!page) return { sections: [], next: after, indexed: 0, complete: false };
    return { sections: page.sections, next: page.sections.at(-1)?.id ?? after, indexed: page.header.indexed, complete: page.header.complete };
  }

  private indexerOf(run: RunRow): SectionIndexer {
    const existing = this.indexers.get(run.id);
    if (existing) return existing.indexer;
    const source = this.options.sourceOf(run);
    this.options.cache?.hold(run.id);
    const indexer = new SectionIndexer(run.id, source, this.options.filesOf(run), (sections) => this.options.changed(run.id, sections));
    const unwatch = isTerminal(run.status) ? () => {} : source.watch(() => indexer.pump());
    this.indexers.set(run.id, { indexer, unwatch });
    if (!isTerminal(run.status) && this.options.latest) this.endIfEnded(run.id, indexer, this.options.latest);
    return indexer;
  }

  private endIfEnded(runId: number, indexer: SectionIndexer, latest: (runId: number) => Promise<RunRow | undefined>): void {
    latest(runId)
      .then((run) => {
        if (run && isTerminal(run.status) && this.indexers.get(runId)?.indexer === indexer) return this.finish(run, indexer);
        if (!run && this.indexers.get(runId)?.indexer === indexer) return this.forget(runId);
      })
      .catch((error: unknown) => debug('run %d: %s', runId, (error as Error).message));
  }

  private async finish(run: RunRow, indexer: SectionIndexer): Promise<void> {
    await indexer.end(run.log_size);
    const entry = this.indexers.get(run.id);
    if (entry?.indexer !== indexer) return;
    await this.drop(run.id, entry);
  }

  /** A purged run: its indexer stops (its files go with the run's, or from the cache). */
  async forget(runId: number): Promise<void> {
    const entry = this.indexers.get(runId);
    if (entry) await this.drop(runId, entry);
    this.options.cache?.remove(runId);
  }

  private async drop(runId: number, entry: { indexer: SectionIndexer; unwatch: () => void }): Promise<void> {
    this.indexers.delete(runId);
    entry.unwatch();
    await entry.indexer.close();
    this.options.cache?.release(runId);
  }

  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.indexers.entries()];
    await Promise.all(entries.map(([runId, entry]) => this.drop(runId, entry)));
  }
}
