import type { LogHandle } from './logSource.js';
import { LineSplitter, lineCount, type LineBatch } from './lineSplitter.js';

const BLOCK = 64 * 1024;
const NEWLINE = 0x0a;

export type { LogHandle };

/**
 * Where the last `lines` lines before `end` start, reading backwards block by block, so the cost
 * depends on what is returned, not on the file's size. Never goes back more than `maxBytes`: then
 * it starts at the first line boundary within that window.
 */
export async function findTailStart(handle: LogHandle, end: number, lines: number, maxBytes: number): Promise<number> {
  if (lines === 0 || end === 0) return end;
  const floor = Math.max(0, end - maxBytes);
  const buffer = Buffer.allocUnsafe(BLOCK);
  let position = end - 1; // the byte at end-1 ends the last line; it separates nothing
  let found = 0;
  let lastNewlineSeen = -1;
  while (position > floor) {
    const blockStart = Math.max(floor, position - BLOCK);
    const length = position - blockStart;
    const { bytesRead } = await handle.read(buffer, 0, length, blockStart);
    for (let index = bytesRead - 1; index >= 0; index--) {
      if (buffer[index] !== NEWLINE) continue;
      found++;
      lastNewlineSeen = blockStart + index;
      if (found === lines) return lastNewlineSeen + 1;
    }
    position = blockStart;
  }
  if (floor === 0) return 0;
  // The window ended first: start at the oldest boundary inside it.
  return lastNewlineSeen === -1 ? floor : lastNewlineSeen + 1;
}

/** The offset after the last newline before `end`: where a live reader starts splitting. */
export async function findLastBoundary(handle: LogHandle, end: number, maxBytes: number): Promise<number> {
  if (end === 0) return 0;
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, end - 1);
  return last[0] === NEWLINE ? end : findTailStart(handle, end, 1, maxBytes);
}

/**
 * The live edge of a log that is still being written: the end of its last complete line. A line
 * still being written is not a line yet; one longer than the window is cut at the window's start.
 * HTTP pages, SSE and the WebSocket reader all use this one rule.
 */
export function liveEdge(handle: LogHandle, size: number, maxLineBytes: number): Promise<number> {
  return findLastBoundary(handle, size, 16 * maxLineBytes);
}

/** What a range's end is: nothing known, a piece boundary of a long line, or the end of a finished log. */
export type RangeEnd = 'open' | 'piece' | 'final';

/**
 * Reads the lines in [start, end), at most `maxBytes` of them. Bytes after the last newline are left
 * for later, unless the range reaches `end` and `end` is known to be a boundary (`rangeEnd`).
 */
export async function readLines(handle: LogHandle, start: number, end: number, maxLineBytes: number, maxBytes: number, rangeEnd: RangeEnd, output: 'strings' | 'json' = 'strings', withEnds = false): Promise<LineBatch> {
  const splitter = new LineSplitter(maxLineBytes, start);
  const limit = Math.min(end, start + maxBytes);
  const result: LineBatch = { offset: start, next: start, lines: [], continued: [] };
  if (output === 'json') result.json = { parts: [], count: 0 };
  if (withEnds) result.ends = [];
  const buffer = Buffer.allocUnsafe(Math.min(BLOCK * 4, Math.max(1, limit - start)));
  let position = start;
  const append = (batch: LineBatch) => {
    for (const index of batch.continued) result.continued.push(lineCount(result) + index);
    // Loops, not push(...): a batch can hold more lines than a call may take arguments.
    for (const line of batch.lines) result.lines.push(line);
    for (const lineEnd of batch.ends ?? []) result.ends!.push(lineEnd);
    if (batch.json) {
      for (const part of batch.json.parts) result.json!.parts.push(part);
      result.json!.count += batch.json.count;
    }
    result.next = batch.next;
  };
  while (position < limit) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, limit - position), position);
    if (bytesRead === 0) break;
    append(splitter.push(buffer.subarray(0, bytesRead), output, withEnds));
    position += bytesRead;
  }
  if (rangeEnd !== 'open' && position === end && splitter.hasPending) append(splitter.flush(rangeEnd === 'piece', output, withEnds));
  return result;
}
