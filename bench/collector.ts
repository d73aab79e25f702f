import type { Histogram } from './histogram.js';
import { LINE_BYTES, parseLine, type ParsedLine } from './lineFormat.js';

const QUOTE = 0x22;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
const LINES_PREFIX = Buffer.from('{"type":"lines",');
const LINES_KEY = Buffer.from('"lines":["');
const SPACE = 0x20;
const JSON_LINE_BYTES = 99; // a writer's line without its newline
const SEQ_DIGITS = 10;
/** A writer's line in a frame's `lines` array: `"` + its 99 bytes + `"` + `,`. */
const JSON_STRIDE = JSON_LINE_BYTES + 3;
/** where a writer's line has its time stamp */
const STAMP_AT = SEQ_DIGITS + 1;
const STAMP_END = STAMP_AT + 17;
const FRAME_END = Buffer.from(']}');

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

  /**
   * Lines below `skipBelow` count for correctness but not for latency (the run's start-up).
   * `everyLine` false: frames of the writer's lines are checked by their first and last sequence
   * numbers and their line count (see onWriterLines).
   */
  constructor(private readonly histogram: Histogram | null, private readonly skipBelow = 0, private readonly everyLine = true) {}

  /** A hub message for `runId`: lines are counted; returns the message type, or null if not this run's. */
  onHubMessage(data: Buffer, runId: number): string | null {
    if (data.subarray(0, LINES_PREFIX.length).equals(LINES_PREFIX)) {
      // {"type":"lines","run_id":R,"offset":O,"next":N,"lines":[…]} — the server's key order.
      if (numberAfter(data, '"run_id":') !== runId) return null;
      const offset = numberAfter(data, '"offset":');
      if (this.nextOffset !== -1 && offset !== this.nextOffset) this.gaps++;
      this.nextOffset = numberAfter(data, '"next":');
      const at = data.indexOf(LINES_KEY) + LINES_KEY.length - 1;
      const end = data.length - FRAME_END.length;
      const lines = (end - at + 1) / JSON_STRIDE;
      // Fixed-width writer lines, `"…",` each, and nothing after them but the frame's end?
      const fixed = Number.isInteger(lines) && lines > 0 && data.subarray(end).equals(FRAME_END) && data[at] === QUOTE;
      if (!fixed || !this.onWriterLines(data, at + 1, lines, JSON_STRIDE, QUOTE)) this.onJsonLines(data, at);
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

  /**
   * The fast path for a frame holding only the writer's fixed-width lines. At 100 subscribers ×
   * 100 000 lines/s the client process has 10 M lines a second to check, on a core it shares with
   * the server, so: time stamps are parsed once per write (the writer stamps a whole write at once
   * and stamps never go back, so lines with one stamp are found by binary search), and without
   * `everyLine` only the first and last lines' sequence numbers are read: with fixed-width lines,
   * the frame's length gives its line count, so a line lost or repeated still shows (only a loss
   * and a repeat in the same frame would cancel out, which the clients checking every line catch).
   */
  private onWriterLines(data: Buffer, first: number, lines: number, stride: number, terminator: number): boolean {
    const lineAt = (index: number) => first + index * stride;
    for (let index = 0; index < lines; index++) {
      const start = lineAt(index);
      if (data[start + JSON_LINE_BYTES] !== terminator || data[start + SEQ_DIGITS] !== SPACE) return false;
    }
    const time = this.stamp();
    const seqAt = (index: number) => {
      let seq = 0;
      for (let digit = 0, start = lineAt(index); digit < SEQ_DIGITS; digit++) seq = seq * 10 + data[start + digit] - 0x30;
      return seq;
    };
    if (this.everyLine) {
      for (let index = 0; index < lines; index++) this.countSeq(seqAt(index), 0);
    } else {
      const first = seqAt(0);
      const last = seqAt(lines - 1);
      if (last - first + 1 === lines) this.countRange(first, lines);
      else for (const seq of [first, last]) this.countSeq(seq, 0);
    }
    const sameStamp = (a: number, b: number) => data.compare(data, lineAt(b) + STAMP_AT, lineAt(b) + STAMP_END, lineAt(a) + STAMP_AT, lineAt(a) + STAMP_END) === 0;
    for (let first = 0; first < lines; ) {
      let last = first;
      for (let high = lines - 1; last < high; ) {
        const middle = (last + high + 1) >> 1;
        if (sameStamp(first, middle)) last = middle;
        else high = middle - 1;
      }
      this.addLatency(seqAt(first), last - first + 1, sentAt(data, lineAt(first)), time);
      first = last + 1;
    }
    return true;
  }

  /** Raw bytes of the log (the baseline sends what it read): lines may be cut anywhere. */
  onRaw(chunk: Buffer): void {
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    const whole = Math.floor(data.length / LINE_BYTES);
    if (whole > 0 && this.onWriterLines(data, 0, whole, LINE_BYTES, NEWLINE)) {
      this.partial = whole * LINE_BYTES < data.length ? Buffer.from(data.subarray(whole * LINE_BYTES)) : null;
      return;
    }
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
    this.countSeq(seq, sent);
    this.addLatency(seq, 1, sent, time);
  }

  private countSeq(seq: number, sent: number): void {
    this.received++;
    if (seq < this.expected) this.duplicated++;
    else if (seq > this.expected) this.outOfOrder += seq - this.expected;
    this.expected = Math.max(this.expected, seq + 1);
    if (sent > this.lastSent) this.lastSent = sent;
  }

  /** `lines` consecutive sequence numbers from `first` on. */
  private countRange(first: number, lines: number): void {
    this.countSeq(first, 0);
    this.received += lines - 1;
    this.expected = Math.max(this.expected, first + lines);
  }

  /** `lines` lines from `firstSeq` on, all written at `sent`, received at `time`. */
  private addLatency(firstSeq: number, lines: number, sent: number, time: number): void {
    if (sent > this.lastSent) this.lastSent = sent;
    const counted = Math.min(lines, firstSeq + lines - this.skipBelow);
    if (counted > 0 && sent > 0) this.histogram?.add(time - sent, counted);
  }

  lost(total: number): number {
    return Math.max(0, total - (this.expected - 1)) + this.outOfOrder + this.gaps;
  }
}

/** The time stamp of the writer's line whose bytes start at `start`. */
function sentAt(data: Buffer, start: number): number {
  const line: ParsedLine = { seq: 0, sent: 0 };
  return parseLine(data, start, start + JSON_LINE_BYTES, line) ? line.sent : 0;
}

/** The non-negative integer after `key` in a frame's header. */
function numberAfter(data: Buffer, key: string): number {
  let position = data.indexOf(key) + key.length;
  let value = 0;
  for (let digit = data[position] - 0x30; digit >= 0 && digit <= 9; digit = data[++position] - 0x30) value = value * 10 + digit;
  return value;
}
