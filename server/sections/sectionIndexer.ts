import { debuglog } from 'node:util';
import { LineTimes } from '../logs/lineTimes.js';
import type { LogHandle, LogSource } from '../logs/logSource.js';
import type { Section } from '../wire.js';
import { SectionParser, type SectionEvent } from './markers.js';
import { SectionWriter, type SectionFiles } from './sectionFile.js';

const debug = debuglog('hub:sections');
/** Small reads keep a batch (its sections, its message) small whatever the log. */
const READ_CHUNK = 64 * 1024;
/** Sections are not lines: a few milliseconds late is fine, and spares a read per write. */
const MIN_READ_INTERVAL_MS = 10;

/**
 * Indexes one run's sections as its log grows: reads what was appended (a hint is never data),
 * finds the markers, stamps them with the lines' times, writes them to the run's section files
 * and hands each batch's changes on. Holds the open sections and one read buffer, never the log.
 */
export class SectionIndexer {
  private parser = new SectionParser();
  private writer: SectionWriter | null = null;
  /** the log's inode when last read: another one is a replaced log */
  private ino: number | null = null;
  private readonly times: LineTimes;
  /** when each open section started (the parser keeps no times) */
  private readonly startTimes = new Map<number, number | null>();
  /** the last section closed, with its times: the one section a later marker may still change */
  private lastClosed: Section | null = null;
  /** the last time given to a marker */
  private lastTime = 0;
  private position = 0;
  private pumping: Promise<void> | null = null;
  private trailing: NodeJS.Timeout | null = null;
  private lastRead = -Infinity;
  private dirty = false;
  private ending: number | null = null;
  private closed = false;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK);
  private finished!: () => void;
  /** resolves once the log of an ended run is indexed to its end (or the indexer closed) */
  readonly done = new Promise<void>((resolve) => (this.finished = resolve));

  /** `changed`: the latest state of each section a batch opened, closed or unfolded, once written */
  constructor(readonly runId: number, private readonly source: LogSource, private readonly files: SectionFiles, private readonly changed: (sections: Section[]) => void) {
    this.times = new LineTimes(() => source.openTimes());
  }

  /** The run has ended with its log `size` bytes long: index up to there, close what is open. */
  end(size: number): Promise<void> {
    this.ending ??= size;
    this.pump();
    return this.done;
  }

  /**
   * A hint that the log may have grown: reads at once when quiet, else once more after the read
   * under way, reads at least MIN_READ_INTERVAL_MS apart (a log written thousands of times a
   * second is read in batches, not per write).
   */
  pump(): void {
    if (this.closed) return;
    if (this.pumping || this.trailing) {
      this.dirty = true;
      return;
    }
    const wait = this.lastRead + MIN_READ_INTERVAL_MS - performance.now();
    if (wait > 0 && this.ending === null) {
      this.trailing = setTimeout(() => {
        this.trailing = null;
        this.pump();
      }, wait);
      return;
    }
    this.lastRead = performance.now();
    this.dirty = false;
    this.pumping = this.readAppended()
      .catch((error: unknown) => {
        debug('run %d: indexing failed: %s', this.runId, (error as Error).message);
        // An ended run's index that cannot be finished stays incomplete: nobody waits for it forever.
        if (this.ending !== null) this.finished();
      })
      .finally(() => {
        this.pumping = null;
        if (this.dirty) {
          this.dirty = false;
          this.pump();
        }
      });
  }

  /** Opens the log for one burst of reads (a handle held for the whole run would pin a deleted or replaced log). */
  private async readAppended(): Promise<void> {
    this.writer ??= await SectionWriter.create(this.files);
    const handle = await this.source.open();
    try {
      if (!handle || this.closed) return await this.finishIfEnded(null);
      const { size, ino } = await handle.stat();
      if (size < this.position || (this.ino !== null && ino !== this.ino)) await this.restart();
      this.ino = ino;
      const limit = this.ending ?? Number.POSITIVE_INFINITY;
      while (this.position < limit && !this.closed) {
        const { bytesRead } = await handle.read(this.buffer, 0, Math.min(READ_CHUNK, limit - this.position), this.position);
        if (bytesRead === 0) break;
        this.position += bytesRead;
        await this.apply(this.parser.push(this.buffer.subarray(0, bytesRead)), false);
      }
      await this.finishIfEnded(handle);
    } finally {
      await handle?.close();
    }
  }

  private async finishIfEnded(handle: LogHandle | null): Promise<void> {
    if (this.ending === null || this.closed) return;
    // A log shorter than recorded (or none) ends where it ends.
    const size = handle ? (await handle.stat()).size : 0;
    if (this.position < Math.min(this.ending, size)) return;
    await this.apply(this.parser.end(), true);
    this.finished();
  }

  /** The log was truncated or replaced: its index starts over. */
  private async restart(): Promise<void> {
    debug('run %d: log reset, indexing again', this.runId);
    await this.writer?.close();
    this.writer = await SectionWriter.create(this.files);
    this.parser = new SectionParser();
    this.startTimes.clear();
    this.lastClosed = null;
    this.lastTime = 0;
    this.position = 0;
  }

  /** Stamps a batch's events with their lines' times, writes the sections, then tells. */
  private async apply(events: SectionEvent[], complete: boolean): Promise<void> {
    const times = events.length > 0 ? await this.times.timesOf(events.map((event) => event.at), this.ending === null ? Date.now() : null) : [];
    const latest = new Map<number, Section>();
    events.forEach((event, index) => {
      // A marker read before the runner's next time record is stamped "now", which can be a moment
      // after the record that then stamps a later marker: times never go back, so no duration is negative.
      const found = times[index] ?? event.markerTime;
      const time = found === null ? null : Math.max(found, this.lastTime);
      if (time !== null) this.lastTime = time;
      const id = event.section.id;
      const before = latest.get(id) ?? (this.lastClosed?.id === id ? this.lastClosed : null);
      if (event.kind === 'open') this.startTimes.set(id, time);
      const section: Section = {
        ...event.section,
        started_at: this.startTimes.get(id) ?? before?.started_at ?? null,
        ended_at: event.kind === 'close' ? time : (before?.ended_at ?? null),
      };
      if (event.kind === 'close') {
        this.startTimes.delete(id);
        this.lastClosed = section; // `^^^ +++` may still unfold it
      }
      latest.set(id, section);
    });
    const sections = [...latest.values()];
    await this.writer!.write(sections, this.position, complete);
    if (sections.length > 0) this.changed(sections);
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.trailing) clearTimeout(this.trailing);
    await this.pumping;
    this.finished();
    await Promise.all([this.writer?.close(), this.times.close()]);
  }
}
