import type { LogHandle } from './logSource.js';

/**
 * A piece of the log a matcher searches: `bytes` from file offset `position`; matches that start in
 * [from, to) count, the bytes around them are context (a regex's lookbehind, `^`, `\b`; the rest of
 * a text query that starts just before `to`). Every cut is at a character boundary, so the pieces
 * decode as the whole log would.
 */
export interface Window {
  bytes: Buffer;
  position: number;
  from: number;
  to: number;
  /** where the line holding `from` starts, as an index in `bytes`; -1: before them (or not known) */
  lineStart: number;
}

/** A matching line in a window: indexes in its bytes; `start` -1: it began before them, `end` -1: it ends after them. */
export interface WindowMatch {
  start: number;
  end: number;
}

const NEWLINE = 0x0a;
/** A match's line is echoed cut at this many UTF-16 units (its offset leads to all of it). */
export const MATCH_LINE_CHARS = 2000;
/** Enough bytes for MATCH_LINE_CHARS units whatever they are (at most 3 bytes a unit, and a character cut at the end). */
const LINE_TEXT_BYTES = 3 * MATCH_LINE_CHARS + 4;

const isContinuation = (byte: number) => (byte & 0xc0) === 0x80;

/** `at`, or up to 3 bytes before it, so that no UTF-8 sequence that may be whole is cut in two. */
export function cutAtCharBoundary(bytes: Buffer, at: number): number {
  for (let back = 1; back <= 4 && at - back >= 0; back++) {
    const byte = bytes[at - back];
    if (isContinuation(byte)) continue;
    // A lead byte whose sequence would go past `at`: cut before it. Anything else already ended.
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back && at - back > 0 ? at - back : at;
  }
  return at;
}

/** The first character boundary at or after `at` (past at most 3 continuation bytes). */
function nextCharBoundary(bytes: Buffer, at: number, limit: number): number {
  let index = at;
  while (index < limit && index - at < 3 && isContinuation(bytes[index])) index++;
  return index;
}

export interface WindowShape {
  chunkBytes: number;
  contextBefore: number;
  contextAfter: number;
}

/**
 * Reads windows of the log: whole lines of at most a chunk, or a chunk of a line longer than that,
 * cut at a character, with context around it; up to `end`. The next window is read while this one
 * is searched (`prefetch`): buffers are taken from a small pool and given back with `release`.
 */
export class WindowReader {
  private readonly free: Buffer[] = [];
  private ahead: { start: number; want: number; buffer: Buffer; read: Promise<number> } | null = null;
  private readonly bufferBytes: number;

  constructor(private readonly handle: LogHandle, private readonly shape: WindowShape, private readonly end: number) {
    this.bufferBytes = shape.contextBefore + shape.chunkBytes + shape.contextAfter;
  }

  /** A buffer of a window's size (the skip to a line's end reads into one too). */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /** Gives back the buffer under `bytes` (a window's, or one that came back from the regex thread). */
  release(bytes: Buffer): void {
    if (this.free.length < 2) this.free.push(Buffer.from(bytes.buffer as ArrayBuffer));
  }

  /** Starts reading the window at `position`, which the next `window` call will likely ask for. */
  prefetch(position: number, atLineStart: boolean): void {
    if (this.ahead || position >= this.end) return;
    const { start, want } = this.plan(position, atLineStart);
    const buffer = this.take();
    const read = this.handle.read(buffer, 0, want, start).then((result) => result.bytesRead);
    read.catch(() => {}); // awaited (and its error thrown) by whoever uses it
    this.ahead = { start, want, buffer, read };
  }

  /** The window that goes on at `position` (a line start when `atLineStart`); null at the end. */
  async window(position: number, atLineStart: boolean): Promise<Window | null> {
    if (position >= this.end) return null;
    const { start, want, before } = this.plan(position, atLineStart);
    const { buffer, bytesRead } = await this.read(start, want);
    if (bytesRead <= before) {
      this.release(buffer);
      return null; // the log is shorter than it said
    }
    const skip = nextCharBoundary(buffer, 0, before);
    const bytes = buffer.subarray(skip, bytesRead);
    const from = before - skip;
    const lineStart = atLineStart ? 0 : -1;
    if (start + bytesRead >= this.end) return { bytes, position: start + skip, from, to: bytes.length, lineStart };
    const chunkEnd = Math.min(from + this.shape.chunkBytes, bytes.length);
    const lastNewline = bytes.lastIndexOf(NEWLINE, chunkEnd - 1);
    if (lastNewline >= from) return { bytes: bytes.subarray(0, lastNewline + 1), position: start + skip, from, to: lastNewline + 1, lineStart };
    // A line longer than a chunk: this part of it, and context after.
    const to = cutAtCharBoundary(bytes, chunkEnd);
    const contextEnd = bytesRead < this.end - start ? cutAtCharBoundary(bytes, bytes.length) : bytes.length;
    return { bytes: bytes.subarray(0, Math.max(contextEnd, to)), position: start + skip, from, to, lineStart };
  }

  /** Waits for a read still under way (before the handle is closed). */
  async close(): Promise<void> {
    await this.ahead?.read.catch(() => 0);
    this.ahead = null;
  }

  private plan(position: number, atLineStart: boolean) {
    const before = atLineStart ? 0 : Math.min(this.shape.contextBefore, position);
    const start = position - before;
    return { before, start, want: Math.min(this.bufferBytes, this.end - start) };
  }

  private async read(start: number, want: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead && ahead.start === start && ahead.want === want) return { buffer: ahead.buffer, bytesRead: await ahead.read };
    if (ahead) {
      await ahead.read.catch(() => 0);
      this.release(ahead.buffer);
    }
    const buffer = this.take();
    const { bytesRead } = await this.handle.read(buffer, 0, want, start);
    return { buffer, bytesRead };
  }
}

/** Where the line holding byte `position` starts: a read backwards to the newline before it. */
export async function findLineStart(handle: LogHandle, position: number, scratch: Buffer): Promise<number> {
  let end = position;
  while (end > 0) {
    const start = Math.max(0, end - scratch.length);
    const { bytesRead } = await handle.read(scratch, 0, end - start, start);
    const newline = scratch.subarray(0, bytesRead).lastIndexOf(NEWLINE);
    if (newline >= 0) return start + newline + 1;
    end = start;
  }
  return 0;
}

/** The end of the last whole line of `size` bytes (0 if none): a running run's growing last line is left for later. */
export function findLastLineEnd(handle: LogHandle, size: number, scratch: Buffer): Promise<number> {
  return findLineStart(handle, size, scratch);
}

/** A match's line as the answer echoes it: decoded (U+FFFD for bytes that are not UTF-8), cut, without its `\r`. */
export function decodeLine(bytes: Buffer, start: number, end: number, whole: boolean): string {
  const stop = whole && end > start && bytes[end - 1] === 0x0d ? end - 1 : end;
  const text = bytes.toString('utf8', start, Math.min(stop, start + LINE_TEXT_BYTES));
  return text.length > MATCH_LINE_CHARS ? text.slice(0, MATCH_LINE_CHARS) : text;
}

/** The text of the line at `lineStart`, from the window when it holds enough of it, else read from the log. */
export async function lineTextAt(handle: LogHandle, window: Window, lineStart: number, lineEnd: number): Promise<string> {
  const start = lineStart - window.position;
  const end = lineEnd === -1 ? -1 : lineEnd - window.position;
  if (start >= 0 && end !== -1 && end <= window.bytes.length) return decodeLine(window.bytes, start, end, true);
  if (start >= 0 && window.bytes.length - start >= LINE_TEXT_BYTES) return decodeLine(window.bytes, start, start + LINE_TEXT_BYTES, false);
  const buffer = Buffer.allocUnsafe(LINE_TEXT_BYTES + 1);
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, lineStart);
  const newline = buffer.subarray(0, bytesRead).indexOf(NEWLINE);
  return newline === -1 ? decodeLine(buffer, 0, Math.min(bytesRead, LINE_TEXT_BYTES), bytesRead < buffer.length) : decodeLine(buffer, 0, newline, true);
}
