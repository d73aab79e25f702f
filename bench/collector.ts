import type { Histogram } from './histogram.js';
import { parseLine, type ParsedLine } from './lineFormat.js';

const QUOTE = 0x22;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
const LINES_PREFIX = Buffer.from('{"type":"lines",');
const LINES_KEY = Buffer.from('"lines":["');
const JSON_LINE_BYTES = 99; // a writer's line without its newline

const now = () => performance.timeOrigin + performance.now();

/**
 * What one client received of a writer's lines: each line's latency (into a histogram shared by the
 * scenario's clients), and lines lost, duplicated or out of order. Frames are read as bytes (see
 * lineFormat.ts); lines that are not the writer's are ignored.
 */
export class Collector {
  expected = 1;
  duplicated = 0;
  outOfOrder = 0;
  received = 0;
  /** hub frames whose `offset` was not the previous frame's `next` */
  gaps = 0;
  firstAt = 0;
  lastAt = 0;
  /** when the newest line received was written */
  lastSent = 0;
  private nextOffset = -1;
  private partial: Buffer | null = null;
  private readonly line: ParsedLine = { seq: 0, sent: 0 };

  /** Lines below `skipBelow` count for correctness but not for latency (the run's start-up). */
  constructor(private readonly histogram: Histogram | null, private readonly skipBelow = 0) {}

  /** A hub message for `runId`: lines are counted; returns the message type, or null if not this run's. */
  onHubMessage(data: Buffer, runId: number): string | null {
    if (data.subarray(0, LINES_PREFIX.length).equals(LINES_PREFIX)) {
      // {"type":"lines","run_id":R,"offset":O,"next":N,"lines":[…]} — the server's key order.
      if (numberAfter(data, '"run_id":') !== runId) return null;
      const offset = numberAfter(data, '"offset":');
      if (this.nextOffset !== -1 && offset !== this.nextOffset) this.gaps++;
      this.nextOffset = numberAfter(data, '"next":');
      this.onJsonLines(data, data.indexOf(LINES_KEY) + LINES_KEY.length - 1);
      return 'lines';
    }
    const message = JSON.parse(String(data));
    return message.run_id === runId ? message.type : null;
  }

  private onJsonLines(data: Buffer, at: number): void {
    const time = this.stamp();
    let position = at;
    while (data[position] === QUOTE) {
      const start = position + 1;
      // Writer lines have no quote or backslash inside, so the closing quote ends the line.
      const end = data[start + JSON_LINE_BYTES] === QUOTE ? start + JSON_LINE_BYTES : data.indexOf(QUOTE, start);
      if (parseLine(data, start, end, this.line)) this.count(this.line, time);
      position = end + 1;
      if (data[position] !== COMMA) break;
      position++;
    }
  }

  /** Raw bytes of the log (the baseline sends what it read): lines may be cut anywhere. */
  onRaw(chunk: Buffer): void {
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    const time = this.stamp();
    let start = 0;
    for (;;) {
      const end = data[start + JSON_LINE_BYTES] === NEWLINE ? start + JSON_LINE_BYTES : data.indexOf(NEWLINE, start);
      if (end === -1) break;
      if (parseLine(data, start, end, this.line)) this.count(this.line, time);
      start = end + 1;
    }
    this.partial = start < data.length ? Buffer.from(data.subarray(start)) : null;
  }

  private stamp(): number {
    const time = now();
    this.lastAt = time;
    if (this.firstAt === 0) this.firstAt = time;
    return time;
  }

  private count({ seq, sent }: ParsedLine, time: number): void {
    this.received++;
    if (seq < this.expected) this.duplicated++;
    else if (seq > this.expected) this.outOfOrder += seq - this.expected;
    this.expected = Math.max(this.expected, seq + 1);
    if (sent > this.lastSent) this.lastSent = sent;
    if (seq >= this.skipBelow && sent > 0) this.histogram?.add(time - sent);
  }

  lost(total: number): number {
    return Math.max(0, total - (this.expected - 1)) + this.outOfOrder + this.gaps;
  }
}

/** The non-negative integer after `key` in a frame's header. */
function numberAfter(data: Buffer, key: string): number {
  let position = data.indexOf(key) + key.length;
  let value = 0;
  for (let digit = data[position] - 0x30; digit >= 0 && digit <= 9; digit = data[++position] - 0x30) value = value * 10 + digit;
  return value;
}
