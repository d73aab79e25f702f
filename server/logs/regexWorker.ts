import { isAscii, isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { WindowMatch } from './searchWindow.js';

/**
 * Runs a user's regular expression over windows of the log in a thread of its own, so a pattern
 * that backtracks for minutes ties up this thread, which the server terminates at its deadline, and
 * never the event loop. The pattern sees the log's text as UTF-8 (what the user sees, U+FFFD for each
 * bad sequence), and each matching line is answered with its byte offsets in the window, mapped
 * back from the text (see ByteOffsets).
 */
export interface RegexJob {
  buffer: ArrayBuffer;
  /** the window: `length` bytes at `offset` of `buffer` */
  offset: number;
  length: number;
  from: number;
  to: number;
  lineStart: number;
  max: number;
}

export interface RegexAnswer {
  buffer: ArrayBuffer;
  matches: WindowMatch[];
}

const NEWLINE = 0x0a;

/**
 * Byte offsets of text positions that only go forward: a line start or a newline. ASCII bytes are
 * their own text. Valid UTF-8 is its text re-encoded (Buffer.byteLength of the text in between).
 * Otherwise the k-th newline of the text is the k-th newline byte: a newline byte is never part of a
 * bad sequence, and a bad sequence never decodes to one, so walking both together is exact.
 */
class ByteOffsets {
  private char = 0;
  private byte = 0;
  private readonly kind: 'ascii' | 'utf8' | 'bytes';

  constructor(private readonly text: string, private readonly bytes: Buffer, ascii: boolean) {
    this.kind = ascii ? 'ascii' : isUtf8(bytes) ? 'utf8' : 'bytes';
  }

  at(char: number): number {
    if (this.kind === 'ascii') return char;
    if (this.kind === 'utf8') {
      this.byte += Buffer.byteLength(this.text.slice(this.char, char));
      this.char = char;
      return this.byte;
    }
    while (this.char < char) {
      const newline = this.text.indexOf('\n', this.char);
      const newlineByte = this.bytes.indexOf(NEWLINE, this.byte);
      if (newline === char) return newlineByte; // `char` is this newline: the cursor stays before it
      this.char = newline + 1;
      this.byte = newlineByte + 1;
    }
    return this.byte;
  }
}

/** How much less than the event loop this thread gets of a busy CPU (a Linux thread's own nice value). */
const NICE = 10;

/**
 * A user's regex takes what CPU the server does not need: with ten searches at once on two cores,
 * threads at the event loop's priority kept /api/health waiting (p99 117 ms in the bench). Linux
 * applies setpriority to the thread whose id it is given; elsewhere the thread keeps its priority.
 */
function lowerThisThreadsPriority(): void {
  try {
    const threadId = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(threadId) && threadId > 0) os.setPriority(threadId, NICE);
  } catch {
    // not Linux
  }
}
lowerThisThreadsPriority();

const pattern = new RegExp((workerData as { source: string }).source, `${(workerData as { flags: string }).flags}gm`);

parentPort?.on('message', ({ buffer, offset, length, from, to, lineStart, max }: RegexJob) => {
  const bytes = Buffer.from(buffer, offset, length);
  const ascii = isAscii(bytes);
  // Pieces cut at character boundaries decode as the whole would.
  const before = ascii ? '' : bytes.toString('utf8', 0, from);
  const middle = ascii ? '' : bytes.toString('utf8', from, to);
  const text = ascii ? bytes.toString('latin1', 0, length) : before + middle + bytes.toString('utf8', to, length);
  const fromChar = ascii ? from : before.length;
  const toChar = ascii ? to : before.length + middle.length;
  const offsets = new ByteOffsets(text, bytes, ascii);
  const matches: WindowMatch[] = [];
  pattern.lastIndex = fromChar;
  while (matches.length < max) {
    const match = pattern.exec(text);
    if (!match || match.index >= toChar) break;
    // The line's start: at most back over what the pattern just passed (the previous line ended before it).
    const newlineBefore = match.index === 0 ? -1 : text.lastIndexOf('\n', match.index - 1);
    const end = text.indexOf('\n', match.index);
    const start = newlineBefore >= 0 ? offsets.at(newlineBefore + 1) : lineStart;
    matches.push({ start, end: end === -1 ? -1 : offsets.at(end) });
    if (end === -1 || end >= toChar) break;
    // One match per line: go on at the next line (an empty match never repeats in place).
    pattern.lastIndex = end + 1;
  }
  parentPort!.postMessage({ buffer, matches } satisfies RegexAnswer, [buffer]);
});
