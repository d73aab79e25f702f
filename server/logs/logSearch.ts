import { ByteMatcher, isAsciiText } from './byteMatcher.js';
import type { LogHandle, LogSource } from './logSource.js';
import { RegexMatcher } from './regexMatcher.js';
import { findLastLineEnd, findLineStart, lineTextAt, WindowReader, type Window, type WindowMatch } from './searchWindow.js';

/** The log is read this much at a time: memory per search stays bounded, whatever the log's size. */
const CHUNK_BYTES = 1024 * 1024;
/** A regex sees this much of a long line around each chunk of it: matches up to this long are found across the cuts. */
const REGEX_CONTEXT_BYTES = 64 * 1024;
/** The event loop is given back at least this often (the search goes on from where it was). */
const YIELD_MS = 2;
const NEWLINE = 0x0a;

export interface SearchQuery {
  text: string;
  regex: boolean;
  caseSensitive: boolean;
  /** where the previous answer's `next_after` said to go on (a line start, or a point in a line longer than a whole answer's time) */
  after: number;
  limit: number;
  /** stop and say where, after this long */
  budgetMs: number;
  /** the longest a regex may run over one chunk */
  regexDeadlineMs: number;
  /** bytes read at a time (CHUNK_BYTES unless a test wants many chunks) */
  chunkBytes?: number;
}

export interface SearchResult {
  matches: { offset: number; line: string }[];
  /** where to go on (`after` of the next request) */
  next_after: number;
  /** the end of the log was reached */
  complete: boolean;
  /** why it stopped before the end: the match limit, the time budget, or a regex too slow to run */
  stopped: 'limit' | 'time_budget' | 'regex_timeout' | null;
}

interface Matcher {
  readonly contextBefore: number;
  readonly contextAfter: number;
  scan(window: Window, max: number, sliceMs: number): Promise<{ matches: WindowMatch[]; scannedTo: number; bytes: Buffer } | 'timeout'>;
  close(): void;
}

const giveWay = () => new Promise<void>((resolve) => setImmediate(resolve));
const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const caseless = (text: string) => text.toLowerCase() === text && text.toUpperCase() === text;

/**
 * Text is a search of the log's bytes (ASCII case folded when case-insensitive); a regex, or a
 * case-insensitive text with letters beyond ASCII (Unicode case rules need the text decoded), runs in
 * a worker over the decoded text and is mapped back to bytes.
 */
function createMatcher(query: SearchQuery, chunkBytes: number): Matcher {
  const context = Math.min(REGEX_CONTEXT_BYTES, Math.floor(chunkBytes / 4));
  if (query.regex) return new RegexMatcher(query.text, query.caseSensitive ? '' : 'i', query.regexDeadlineMs, context);
  if (query.caseSensitive || isAsciiText(query.text) || caseless(query.text)) return new ByteMatcher(query.text, query.caseSensitive || caseless(query.text));
  return new RegexMatcher(escapeRegex(query.text), 'i', query.regexDeadlineMs, context);
}


async function isLineStart(handle: LogHandle, position: number): Promise<boolean> {
  if (position === 0) return true;
  const byte = Buffer.alloc(1);
  const { bytesRead } = await handle.read(byte, 0, 1, position - 1);
  return bytesRead === 1 && byte[0] === NEWLINE;
}

/**
 * Searches a run's log from `after` to its end (a running run's last line once it is whole):
 * matching lines in file order as {offset of the line, line}, at most `limit`, within a time budget;
 * `next_after` says where to go on. All offsets are the file's bytes. Work is linear in the bytes
 * read: after a match the search goes on at its line's end, and the event loop is given back every
 * few ms (a regex runs in a worker thread).
 */
export async function searchLog(source: LogSource, query: SearchQuery, finished: boolean): Promise<SearchResult> {
  const handle = await source.open();
  if (!handle) return { matches: [], next_after: query.after, complete: true, stopped: null };
  const chunkBytes = Math.max(query.chunkBytes ?? CHUNK_BYTES, 64);
  const matcher = createMatcher(query, chunkBytes);
  try {
    return await searchWindows(handle, matcher, query, finished, chunkBytes);
  } finally {
    matcher.close();
    await handle.close();
  }
}

async function searchWindows(handle: LogHandle, matcher: Matcher, query: SearchQuery, finished: boolean, chunkBytes: number): Promise<SearchResult> {
  const started = performance.now();
  const matches: SearchResult['matches'] = [];
  const scratch = Buffer.allocUnsafe(64 * 1024);
  const size = (await handle.stat()).size;
  const end = finished ? size : await findLastLineEnd(handle, size, scratch);
  const answer = (stopped: SearchResult['stopped'], next: number): SearchResult => ({ matches, next_after: next, complete: stopped === null || (stopped === 'limit' && next >= end), stopped });
  if (matcher instanceof ByteMatcher && matcher.impossible) return answer(null, Math.max(query.after, end));

  const reader = new WindowReader(handle, { chunkBytes, contextBefore: matcher.contextBefore, contextAfter: matcher.contextAfter }, end);
  try {
    return await searchFrom(handle, reader, matcher, query, { end, started, matches, answer });
  } finally {
    await reader.close();
  }
}

interface SearchState {
  /** where the search ends (a running run's growing last line is left for later) */
  end: number;
  started: number;
  matches: SearchResult['matches'];
  answer: (stopped: SearchResult['stopped'], next: number) => SearchResult;
}

/** The loop: a window, its matches, the next; or the rest of a line that matched. */
async function searchFrom(handle: LogHandle, reader: WindowReader, matcher: Matcher, query: SearchQuery, { end, started, matches, answer }: SearchState): Promise<SearchResult> {
  const scratch = Buffer.allocUnsafe(64 * 1024);
  let position = query.after;
  /** where the line holding `position` starts; null: not known (`after` within a line) */
  let lineStart: number | null = (await isLineStart(handle, position)) ? position : null;
  /** the line at `position` matched already: only its end is looked for */
  let skipping = false;
  let lastYield = performance.now();
  // Past the budget once something was searched (a budget too short for one chunk still goes on).
  const overBudget = () => performance.now() - started > query.budgetMs && position > query.after;
  const yieldIfDue = async () => {
    if (performance.now() - lastYield < YIELD_MS) return;
    await giveWay();
    lastYield = performance.now();
  };

  for (;;) {
    await yieldIfDue();
    if (skipping) {
      // Not bounded by the budget: a next_after within a line that matched would repeat it.
      const buffer = reader.take();
      const { bytesRead } = position < end ? await handle.read(buffer, 0, Math.min(buffer.length, end - position), position) : { bytesRead: 0 };
      const newline = buffer.subarray(0, bytesRead).indexOf(NEWLINE);
      reader.release(buffer);
      if (bytesRead === 0 || newline !== -1) {
        position = bytesRead === 0 ? Math.max(position, end) : position + newline + 1;
        lineStart = position;
        skipping = false;
        if (matches.length >= query.limit) return answer('limit', position);
      } else {
        position += bytesRead;
      }
      continue;
    }
    if (overBudget()) return answer('time_budget', lineStart !== null && lineStart > query.after ? lineStart : position);
    const window = await reader.window(position, lineStart === position);
    if (!window) return answer(null, position);
    reader.prefetch(window.position + window.to, window.bytes[window.to - 1] === NEWLINE);
    window.lineStart = lineStart !== null && lineStart >= window.position ? lineStart - window.position : -1;
    for (;;) {
      const scan = await matcher.scan(window, query.limit - matches.length, YIELD_MS);
      if (scan === 'timeout') return answer('regex_timeout', position);
      window.bytes = scan.bytes;
      for (const match of scan.matches) {
        const start = match.start >= 0 ? window.position + match.start : (lineStart ??= await findLineStart(handle, position, scratch));
        const lineEnd = match.end === -1 ? -1 : window.position + match.end;
        matches.push({ offset: start, line: await lineTextAt(handle, window, start, lineEnd) });
        lineStart = start;
        if (lineEnd === -1) {
          skipping = true;
          position = window.position + window.bytes.length;
        } else {
          position = lineEnd + 1;
          lineStart = position;
        }
      }
      if (skipping || matches.length >= query.limit) break;
      const scannedTo = window.position + scan.scannedTo;
      if (scannedTo > position) {
        const newline = window.bytes.subarray(position - window.position, scan.scannedTo).lastIndexOf(NEWLINE);
        if (newline !== -1) lineStart = position + newline + 1;
        position = scannedTo;
      }
      if (scan.scannedTo >= window.to) break;
      // The text search gave way within the window: the event loop turns, then it goes on from there.
      await giveWay();
      lastYield = performance.now();
      if (overBudget()) return answer('time_budget', lineStart !== null && lineStart > query.after ? lineStart : position);
      window.from = position - window.position;
      window.lineStart = lineStart !== null && lineStart >= window.position ? lineStart - window.position : -1;
    }
    reader.release(window.bytes);
    if (!skipping && matches.length >= query.limit) return answer('limit', position);
  }
}
