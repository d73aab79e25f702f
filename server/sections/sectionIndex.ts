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
      if (run.status === 'running') this.indexerOf(run).pump();
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
    for (const run of active) if (!this.closed && run.status === 'running') this.indexerOf(run).pump();
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
    if (from !== undefined) after = Math.max(after, await sectionIdBefore(files, from));
    const page = await readSectionPage(files, after, limit);
    if (!page) return { sections: [], next: after, indexed: 0, complete: false };
    return { sections: page.sections, next: page.sections.at(-1)?.id ?? after, indexed: page.header.indexed, complete: page.header.complete };
  }

  private indexerOf(run: RunRow): SectionIndexer {
    const existing = this.indexers.get(run.id);
    if (existing) return existing.indexer;
    const source = this.options.sourceOf(run);
    const indexer = new SectionIndexer(run.id, source, this.options.filesOf(run), (sections) => this.options.changed(run.id, sections));
    const unwatch = isTerminal(run.status) ? () => {} : source.watch(() => indexer.pump());
    this.indexers.set(run.id, { indexer, unwatch });
    return indexer;
  }

  private async finish(run: RunRow, indexer: SectionIndexer): Promise<void> {
    await indexer.end(run.log_size);
    const entry = this.indexers.get(run.id);
    if (entry?.indexer !== indexer) return;
    this.indexers.delete(run.id);
    entry.unwatch();
    await indexer.close();
  }

  /** A purged run: its indexer stops (its files go with the run's). */
  async forget(runId: number): Promise<void> {
    const entry = this.indexers.get(runId);
    if (!entry) return;
    this.indexers.delete(runId);
    entry.unwatch();
    await entry.indexer.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.indexers.values()];
    this.indexers.clear();
    for (const entry of entries) entry.unwatch();
    await Promise.all(entries.map((entry) => entry.indexer.close()));
  }
}
