/**
 * Counts what a client received of a writer's lines (`<seq> <sent-ms> ...`): latency of each
 * line, and lines lost, duplicated or out of order. Lines that are not the writer's are ignored.
 */
export class Collector {
  latencies: number[] = [];
  expected = 1;
  duplicated = 0;
  outOfOrder = 0;
  received = 0;
  firstAt = 0;
  lastAt = 0;
  private partial = '';

  /** Lines below `skipBelow` count for correctness but not for latency (the run's start-up). */
  constructor(private readonly skipBelow = 0) {}

  onLines(lines: string[]): void {
    const now = performance.timeOrigin + performance.now();
    this.lastAt = now;
    if (this.firstAt === 0) this.firstAt = now;
    for (const line of lines) {
      const space = line.indexOf(' ');
      if (space < 1) continue;
      const seq = Number(line.slice(0, space));
      if (!Number.isInteger(seq)) continue;
      this.received++;
      if (seq < this.expected) this.duplicated++;
      else if (seq > this.expected) this.outOfOrder += seq - this.expected;
      this.expected = Math.max(this.expected, seq + 1);
      if (seq >= this.skipBelow) {
        const sent = Number(line.slice(space + 1, line.indexOf(' ', space + 1)));
        if (sent > 0) this.latencies.push(now - sent);
      }
    }
  }

  /** For raw byte streams (the baseline sends chunks, not lines). */
  onChunk(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    this.onLines(parts);
  }

  lost(total: number): number {
    return Math.max(0, total - (this.expected - 1)) + this.outOfOrder;
  }
}
