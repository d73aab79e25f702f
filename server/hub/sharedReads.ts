/** A frame read from the log for catching up: the lines of [offset, next), framed once. */
export interface ReadFrame {
  next: number;
  frame: Buffer;
}

/**
 * Frames read from the file for subscribers catching up, shared between them. Many subscribers
 * behind at once (a reconnect wave, clients of a busy run that fell behind together) would
 * otherwise each read and frame the same bytes. Reads end on a fixed grid (`grid` bytes, cut back
 * to the last line boundary), so subscribers that started at different offsets fall into step after
 * one read and then ask for the same ranges: the first reads, the others get its frame, or wait for
 * the same read. Frames stay while they are among the newest `maxBytes`.
 */
export class SharedReads {
  private readonly entries = new Map<number, Promise<ReadFrame | null>>();
  private readonly sizes = new Map<number, number>();
  private bytes = 0;

  constructor(readonly grid: number, private readonly maxBytes: number) {}

  /** Where a read from `start` should stop: the grid line after it, at least `minBytes` on. */
  endFor(start: number, minBytes: number): number {
    return Math.ceil((start + minBytes) / this.grid) * this.grid;
  }

  /**
   * The frame starting at `start`: a shared one, or `read()`'s, kept for the next subscriber that
   * asks. `read` returns null when it made no progress (nothing is kept then).
   */
  get(start: number, read: () => Promise<ReadFrame | null>): Promise<ReadFrame | null> {
    const known = this.entries.get(start);
    if (known) return known;
    // Only this read's own entry is kept or dropped: a clear() meanwhile may have let another in.
    const current = () => this.entries.get(start) === reading;
    const reading: Promise<ReadFrame | null> = read().then(
      (result) => {
        if (result && current()) this.keep(start, result.frame.length);
        else if (current()) this.entries.delete(start);
        return result;
      },
      (error: unknown) => {
        if (current()) this.entries.delete(start);
        throw error;
      },
    );
    this.entries.set(start, reading);
    return reading;
  }

  clear(): void {
    this.entries.clear();
    this.sizes.clear();
    this.bytes = 0;
  }

  private keep(start: number, size: number): void {
    this.sizes.set(start, size);
    this.bytes += size;
    // Oldest first (a Map iterates in insertion order); reads still in flight are not counted.
    for (const [oldest, oldestSize] of this.sizes) {
      if (this.bytes <= this.maxBytes) break;
      this.sizes.delete(oldest);
      this.entries.delete(oldest);
      this.bytes -= oldestSize;
    }
  }
}
