/** A frame of lines as broadcast: the bytes of [offset, next) of the log, framed once. */
export interface RecentFrame {
  offset: number;
  next: number;
  frame: Buffer;
  at: number;
}

/**
 * The last frames broadcast for a run (a few MiB, a few seconds). A subscriber that paused because
 * its socket was full usually resumes within them: it is sent the same shared frames instead of
 * re-reading and re-framing the file for itself, which under load would multiply the server's work
 * by the number of lagging subscribers just when it has the least to spare.
 */
export class RecentFrames {
  private frames: RecentFrame[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number, private readonly maxAgeMs: number) {}

  add(offset: number, next: number, frame: Buffer): void {
    const last = this.frames.at(-1);
    if (last && last.next !== offset) this.clear(); // only contiguous frames
    const now = performance.now();
    this.frames.push({ offset, next, frame, at: now });
    this.bytes += frame.length;
    let drop = 0;
    while (drop < this.frames.length - 1 && (this.bytes > this.maxBytes || this.frames[drop].at < now - this.maxAgeMs)) this.bytes -= this.frames[drop++].frame.length;
    if (drop > 0) this.frames = this.frames.slice(drop);
  }

  clear(): void {
    this.frames = [];
    this.bytes = 0;
  }

  /** The frames from `offset` to the newest, if a frame starts at `offset`; else null. */
  from(offset: number): RecentFrame[] | null {
    let low = 0;
    let high = this.frames.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const { offset: start } = this.frames[middle];
      if (start === offset) return this.frames.slice(middle);
      if (start < offset) low = middle + 1;
      else high = middle - 1;
    }
    return null;
  }
}
