import { Worker } from 'node:worker_threads';
import type { LogSource } from './logSource.js';

/** A chunk of the log read at a time: memory per search stays bounded, whatever the log's size. */
const CHUNK_BYTES = 1024 * 1024;
/** A line echoed in a match is cut here (the offset still leads to all of it). */
const MATCH_LINE_CHARS = 2000;

export interface SearchQuery {
  text: string;
  regex: boolean;
  caseSensitive: boolean;
  /** a line boundary: where the previous answer's `next_after` said to go on */
  after: number;
  limit: number;
  /** stop and say where, after this long */
  budgetMs: number;
  /** the longest one chunk's regex may run */
  regexDeadlineMs: number;
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

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Finds match starts in one chunk of text: in this thread for plain text, in a worker with a deadline for a user's regex. */
type Matcher = (text: string) => Promise<number[] | 'timeout'>;

function plainMatcher(query: SearchQuery): Matcher {
  // An escaped literal cannot backtrack: V8 scans for it in linear time.
  const pattern = new RegExp(escapeRegex(query.text), query.caseSensitive ? 'g' : 'gi');
  return async (text) => Array.from(text.matchAll(pattern), (match) => match.index);
}

function regexMatcher(query: SearchQuery): { match: Matcher; close: () => void } {
  let worker: Worker | null = null;
  const start = () => new Worker(new URL('./regexWorker.js', import.meta.url));
  return {
    match: (text) => new Promise((resolve, reject) => {
      worker ??= start();
      const thread = worker;
      // One chunk at a time: both listeners go when either fires (no listener is left per chunk).
      const done = () => {
        clearTimeout(timer);
        thread.off('message', onMessage);
        thread.off('error', onError);
      };
      const onMessage = (starts: number[]) => {
        done();
        resolve(starts);
      };
      const onError = (error: Error) => {
        done();
        worker = null;
        reject(error);
      };
      const timer = setTimeout(() => {
        done();
        worker = null;
        void thread.terminate();
        resolve('timeout');
      }, query.regexDeadlineMs);
      thread.on('message', onMessage);
      thread.on('error', onError);
      thread.postMessage({ source: query.text, flags: query.caseSensitive ? '' : 'i', text });
    }),
    close: () => void worker?.terminate(),
  };
}

/**
 * Searches a run's log from a line boundary to its end, a chunk at a time: matches in file order
 * as {offset, line}, at most `limit`, within a time budget; `next_after` says where to go on.
 * Chunks end at a line end, so a match's line is whole and its offset exact (a line longer than a
 * chunk is searched in pieces).
 */
export async function searchLog(source: LogSource, query: SearchQuery, finished: boolean): Promise<SearchResult> {
  const handle = await source.open();
  const result: SearchResult = { matches: [], next_after: query.after, complete: false, stopped: null };
  if (!handle) return { ...result, complete: true };
  const regex = query.regex ? regexMatcher(query) : null;
  const match = regex ? regex.match : plainMatcher(query);
  const deadline = Date.now() + query.budgetMs;
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  try {
    const readableSize = (await handle.stat()).size;
    let position = query.after;
    while (position < readableSize) {
      if (Date.now() > deadline) return { ...result, next_after: position, stopped: 'time_budget' };
      const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK_BYTES, readableSize - position), position);
      if (bytesRead === 0) break;
      // Up to the last line end in the chunk (all of it at the end of the log, or for a longer line).
      const lastNewline = buffer.lastIndexOf(0x0a, bytesRead - 1);
      // A running run's last line may still grow: only finished logs end without a newline.
      const atEnd = finished && position + bytesRead >= readableSize;
      if (lastNewline < 0 && !finished && position + bytesRead >= readableSize) break; // only a growing last line is left
      const length = lastNewline >= 0 && !atEnd ? lastNewline + 1 : bytesRead;
      const text = buffer.toString('utf8', 0, length);
      const starts = await match(text);
      if (starts === 'timeout') return { ...result, next_after: position, stopped: 'regex_timeout' };
      // Byte offsets of each matching line, walking forward once through the chunk.
      let charCursor = 0;
      let byteCursor = 0;
      let lastLineStart = -1;
      for (const index of starts) {
        const lineStart = text.lastIndexOf('\n', index - 1) + 1;
        if (lineStart === lastLineStart) continue; // one entry per line
        lastLineStart = lineStart;
        byteCursor += Buffer.byteLength(text.slice(charCursor, lineStart));
        charCursor = lineStart;
        const lineEnd = text.indexOf('\n', lineStart);
        const line = text.slice(lineStart, lineEnd === -1 ? text.length : lineEnd).replace(/\r$/, '');
        result.matches.push({ offset: position + byteCursor, line: line.length > MATCH_LINE_CHARS ? line.slice(0, MATCH_LINE_CHARS) : line });
        if (result.matches.length >= query.limit) {
          const next = lineEnd === -1 ? position + length : position + byteCursor + Buffer.byteLength(text.slice(lineStart, lineEnd + 1));
          return { ...result, next_after: next, stopped: 'limit', complete: next >= readableSize };
        }
      }
      position += length;
    }
    return { ...result, next_after: position, complete: true };
  } finally {
    regex?.close();
    await handle.close();
  }
}
