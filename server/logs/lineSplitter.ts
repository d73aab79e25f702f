import { isAscii } from 'node:buffer';
import { encodeJsonLines } from './jsonLines.js';

/** Lines cut from a byte range of a log file. Offsets are byte offsets into the file. */
export interface LineBatch {
  /** where the first line starts */
  offset: number;
  /** where the next unseen byte is */
  next: number;
  lines: string[];
  /** indices of lines that go on in the next line (a line longer than the maximum, cut in pieces) */
  continued: number[];
  /** with output 'json', the lines instead as JSON strings: parts `"a","b"` to join with commas */
  json?: { parts: Buffer[]; count: number };
  /** when asked for: where each line (or piece) ends in the file, after its newline (for its time) */
  ends?: number[];
  /** when asked for: when each line was written (Unix ms; null when unknown), from its end (see lineTimes.ts) */
  times?: (number | null)[];
}

/** What a splitter makes of lines: strings, JSON ready for a frame, or nothing (offsets only). */
export type SplitOutput = 'strings' | 'json' | 'none';

export const lineCount = (batch: LineBatch) => batch.json?.count ?? batch.lines.length;

const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Splits appended bytes into lines on `\n`, whatever the write boundaries: a partial line (even a
 * partial UTF-8 character) waits as bytes until its newline arrives, so decoding never sees half a
 * character. `\r\n` loses its `\r`; a lone `\r` stays. A line longer than `maxLineBytes` is cut into
 * pieces at character boundaries, so memory is bounded by `maxLineBytes` whatever the line length.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** file offset of the first pending byte, i.e. the start of the current (partial) line */
  private lineStart: number;

  constructor(private readonly maxLineBytes: number, startOffset: number) {
    this.lineStart = startOffset;
  }

  /** Offset up to which every byte has been emitted as a line or piece. */
  get committed(): number {
    return this.lineStart;
  }

  private output: SplitOutput = 'strings';
  private withEnds = false;

  /**
   * Feeds the bytes that follow everything fed so far; returns the complete lines among them.
   * With output 'none' the boundaries advance exactly as they would, but no line is made (nobody
   * is reading them). `withEnds`: the batch says where each line ends too.
   */
  push(chunk: Buffer, output: SplitOutput = 'strings', withEnds = false): LineBatch {
    this.output = output;
    this.withEnds = withEnds && output !== 'none';
    const batch = this.newBatch();
    let position = 0;
    if (this.pendingBytes > 0) {
      // Finish (or extend) the line that started in an earlier chunk first.
      const first = chunk.indexOf(NEWLINE);
      position = first === -1 ? chunk.length : first + 1;
      this.splitSlowly(batch, chunk, 0, position);
    }
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    if (lastNewline >= position && lastNewline - position <= this.maxLineBytes) {
      // Fast path: no line in this region can be over the maximum, so decode it in one go.
      this.splitRegion(batch, chunk, position, lastNewline);
      position = lastNewline + 1;
    }
    this.splitSlowly(batch, chunk, position, chunk.length);
    batch.next = this.lineStart;
    return batch;
  }

  private newBatch(): LineBatch {
    const batch: LineBatch = { offset: this.lineStart, next: this.lineStart, lines: [], continued: [] };
    if (this.output === 'json') batch.json = { parts: [], count: 0 };
    if (this.withEnds) batch.ends = [];
    return batch;
  }

  /** `chunk[start..end]` is whole lines, `end` a newline: one decode, one split. */
  private splitRegion(batch: LineBatch, chunk: Buffer, start: number, end: number): void {
    const regionStart = this.lineStart;
    this.lineStart += end + 1 - start;
    if (this.output === 'none') return;
    if (batch.ends) {
      // Every newline up to and including the one at `end` ends a line.
      for (let newline = chunk.indexOf(NEWLINE, start); newline !== -1 && newline <= end; newline = chunk.indexOf(NEWLINE, newline + 1)) {
        batch.ends.push(regionStart + newline + 1 - start);
      }
    }
    const region = chunk.subarray(start, end);
    const encoded = batch.json && encodeJsonLines(region);
    if (encoded) {
      batch.json!.parts.push(encoded.json);
      batch.json!.count += encoded.count;
      return;
    }
    // Pure ASCII (the common case) decodes as latin1, which skips UTF-8 validation.
    const lines = (isAscii(region) ? region.toString('latin1') : region.toString('utf8')).split('\n');
    for (const line of lines) this.addLine(batch, line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  private addLine(batch: LineBatch, line: string): void {
    if (!batch.json) {
      batch.lines.push(line);
      return;
    }
    batch.json.parts.push(Buffer.from(JSON.stringify(line)));
    batch.json.count++;
  }

  /** Line by line over `chunk[start..end)`, with pieces for lines over the maximum. */
  private splitSlowly(batch: LineBatch, chunk: Buffer, start: number, end: number): void {
    let position = start;
    while (position < end) {
      const found = chunk.indexOf(NEWLINE, position);
      const newline = found >= end ? -1 : found;
      const segmentEnd = newline === -1 ? end : newline;
      const room = this.maxLineBytes - this.pendingBytes;
      if (segmentEnd - position > room) {
        // Too long: emit a piece of at most maxLineBytes, cut where no character is split.
        position += this.emitPiece(batch, chunk, position, room);
        continue;
      }
      if (newline === -1) {
        this.take(chunk.subarray(position, end));
        break;
      }
      if (this.pendingBytes === 0) {
        // A whole line inside the chunk: decode it in place, no copy.
        const end = newline > position && chunk[newline - 1] === CR ? newline - 1 : newline;
        if (this.output !== 'none') this.addLine(batch, chunk.toString('utf8', position, end));
        this.lineStart += newline + 1 - position;
        batch.ends?.push(this.lineStart);
      } else {
        this.take(chunk.subarray(position, newline));
        this.emit(batch, 1, false);
      }
      position = newline + 1;
    }
  }

  /** At the end of a range that is known to be a boundary: the pending bytes become a line. */
  flush(continued: boolean, output: SplitOutput = 'strings', withEnds = false): LineBatch {
    this.output = output;
    this.withEnds = withEnds && output !== 'none';
    const batch = this.newBatch();
    if (this.pendingBytes > 0) this.emit(batch, 0, continued);
    batch.next = this.lineStart;
    return batch;
  }

  get hasPending(): boolean {
    return this.pendingBytes > 0;
  }

  private take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    // Copy: the caller reuses its read buffer.
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
  }

  private emit(batch: LineBatch, terminatorBytes: number, continued: boolean): void {
    let bytes = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    const consumed = this.pendingBytes + terminatorBytes;
    if (terminatorBytes > 0 && bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    if (this.output !== 'none') {
      if (continued) batch.continued.push(lineCount(batch));
      this.addLine(batch, bytes.toString('utf8'));
    }
    this.lineStart += consumed;
    batch.ends?.push(this.lineStart);
    this.pending = [];
    this.pendingBytes = 0;
  }

  /**
   * Emits the first piece of the line made of the pending bytes and `chunk[position..]`, which is
   * longer than the room left. The cut is at maxLineBytes, moved back (at most 3 bytes) so that it
   * does not fall inside a UTF-8 character. It depends only on the line's bytes, so every reader
   * that starts at the same line start cuts at the same offsets. Returns the chunk bytes consumed.
   */
  private emitPiece(batch: LineBatch, chunk: Buffer, position: number, room: number): number {
    const line = Buffer.concat([...this.pending, chunk.subarray(position, position + room + 1)]);
    let cut = this.maxLineBytes;
    while (cut > this.maxLineBytes - 3 && cut > 1 && (line[cut] & 0xc0) === 0x80) cut--;
    if ((line[cut] & 0xc0) === 0x80) cut = this.maxLineBytes; // not valid UTF-8 anyway
    const fromChunk = cut - this.pendingBytes;
    this.pending = [line.subarray(0, cut)];
    this.pendingBytes = cut;
    this.emit(batch, 0, true);
    if (fromChunk < 0) {
      // The cut fell inside the pending bytes: their rest starts the next piece.
      this.take(line.subarray(cut, cut - fromChunk));
      return 0;
    }
    return fromChunk;
  }
}
