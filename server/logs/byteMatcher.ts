import type { Window, WindowMatch } from './searchWindow.js';
import { giveTurn, takeTurn } from './searchTurns.js';

/** Text is searched this many bytes at a time, so the search can give the event loop back between slices. */
const SLICE_BYTES = 64 * 1024;
/**
 * Buffer.indexOf is Boyer-Moore: fast on logs, but a query such as `a…aba…a` over `aaaa…` costs it
 * the query's length at every byte. A slice that takes this long goes on with KMP, linear whatever
 * the bytes (a slice normally takes well under 0.1 ms).
 */
const SLOW_SLICE_MS = 2;

const NEWLINE = 0x0a;

/** ASCII A-Z to a-z, four bytes at a time; other bytes as they are. */
function foldAscii(source: Buffer, target: Buffer, start: number, end: number): void {
  let index = start;
  for (; index < end && (source.byteOffset + index) % 4 !== 0; index++) target[index] = foldByte(source[index]);
  const words = (end - index) >>> 2;
  const from = new Uint32Array(source.buffer, source.byteOffset + index, words);
  const to = new Uint32Array(target.buffer, target.byteOffset + index, words);
  for (let i = 0; i < words; i++) {
    const word = from[i];
    const low = word & 0x7f7f7f7f;
    // High bit of each byte: ≥ 'A', and not > 'Z', and ASCII.
    const upper = (low + 0x3f3f3f3f) & ~(low + 0x25252525) & ~word & 0x80808080;
    to[i] = word ^ (upper >>> 2);
  }
  for (index += words * 4; index < end; index++) target[index] = foldByte(source[index]);
}

const foldByte = (byte: number) => (byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte);

/** Knuth-Morris-Pratt: the first start of `needle` in bytes [from, end) of `haystack`, in at most 2 × (end - from) steps. */
export function kmpIndexOf(haystack: Buffer, from: number, end: number, needle: Buffer, failure: Int32Array): number {
  let matched = 0;
  for (let index = from; index < end; index++) {
    const byte = haystack[index];
    while (matched > 0 && byte !== needle[matched]) matched = failure[matched - 1];
    if (byte === needle[matched] && ++matched === needle.length) return index - needle.length + 1;
  }
  return -1;
}

export function kmpFailure(needle: Buffer): Int32Array {
  const failure = new Int32Array(needle.length);
  for (let index = 1, matched = 0; index < needle.length; index++) {
    while (matched > 0 && needle[index] !== needle[matched]) matched = failure[matched - 1];
    if (needle[index] === needle[matched]) matched++;
    failure[index] = matched;
  }
  return failure;
}

/** True when ASCII case folding is all that case-insensitive matching of `text` needs (see ByteMatcher). */
export const isAsciiText = (text: string) => /^[\x00-\x7f]*$/.test(text);

/**
 * A text query as a search of the log's bytes for its UTF-8 bytes: offsets are the file's own, and
 * bytes that are not UTF-8 cost nothing. Case-insensitive for an ASCII query: both sides with A-Z
 * folded to a-z (in JavaScript's `i` rule, which a text query follows, an ASCII letter matches only
 * ASCII letters, so this is exact). One match per line: after a match the search goes on after its
 * line's end. Works in turns of `sliceMs` shared with other searches (see searchTurns.ts), then
 * returns how far it got.
 */
export class ByteMatcher {
  readonly contextBefore = 0;
  readonly contextAfter: number;
  private readonly needle: Buffer;
  private readonly failure: Int32Array;
  private readonly fold: boolean;
  private folded = Buffer.alloc(0);

  constructor(text: string, caseSensitive: boolean) {
    this.fold = !caseSensitive && /[A-Za-z]/.test(text);
    this.needle = Buffer.from(this.fold ? text.toLowerCase() : text);
    this.failure = kmpFailure(this.needle);
    this.contextAfter = this.needle.length - 1;
  }

  /** A needle with a newline is never within one line. */
  get impossible(): boolean {
    return this.needle.includes(NEWLINE);
  }

  async scan(window: Window, max: number, sliceMs: number): Promise<{ matches: WindowMatch[]; scannedTo: number; bytes: Buffer }> {
    await takeTurn();
    const started = performance.now();
    try {
      return this.scanSlice(window, max, started + sliceMs);
    } finally {
      giveTurn(performance.now() - started);
    }
  }

  private scanSlice(window: Window, max: number, yieldAt: number): { matches: WindowMatch[]; scannedTo: number; bytes: Buffer } {
    const { bytes, to } = window;
    const matches: WindowMatch[] = [];
    const haystack = this.fold ? this.foldWindow(bytes, window.from) : bytes;
    let index = window.from;
    let slow = false; // for the rest of this window (a slice that was merely preempted costs one window at KMP's speed)
    while (index < to && matches.length < max) {
      if (performance.now() > yieldAt) break;
      const sliceEnd = Math.min(to + this.needle.length - 1, index + SLICE_BYTES + this.needle.length - 1, bytes.length);
      let found: number;
      if (slow) {
        found = kmpIndexOf(haystack, index, sliceEnd, this.needle, this.failure);
      } else {
        const started = performance.now();
        found = haystack.subarray(index, sliceEnd).indexOf(this.needle);
        if (found !== -1) found += index;
        slow = performance.now() - started > SLOW_SLICE_MS;
      }
      if (found === -1 || found >= to) {
        index = Math.max(index + 1, sliceEnd - this.needle.length + 1);
        continue;
      }
      const newlineBefore = found === 0 ? -1 : bytes.lastIndexOf(NEWLINE, found - 1);
      const end = bytes.indexOf(NEWLINE, found);
      matches.push({ start: newlineBefore >= 0 ? newlineBefore + 1 : window.lineStart, end });
      if (end === -1) return { matches, scannedTo: bytes.length, bytes };
      index = end + 1;
    }
    return { matches, scannedTo: Math.min(index, to), bytes };
  }

  close(): void {}

  private foldWindow(bytes: Buffer, from: number): Buffer {
    if (this.folded.length < bytes.length) this.folded = Buffer.allocUnsafeSlow(bytes.length);
    foldAscii(bytes, this.folded, from, bytes.length);
    return this.folded.subarray(0, bytes.length);
  }
}
