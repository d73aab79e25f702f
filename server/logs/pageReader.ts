import { HubError } from '../errors.js';
import type { LogPage, StartAt } from '../wire.js';
import { findTailStart, liveEdge, readLines } from './logFile.js';
import type { LogSource } from './logSource.js';
import { LineTimes } from './lineTimes.js';

export type { LogPage, StartAt };

export const DEFAULT_TAIL = 1000;
export const MAX_TAIL = 10_000;
/** How far back `tail` may look, whatever N: bounds the work of a tail request. */
export const MAX_TAIL_BYTES = 16 * 1024 * 1024;
/** One offset-mode page carries at most this much of the log. */
export const MAX_OFFSET_RESPONSE_BYTES = 1024 * 1024;

export interface PageOptions {
  maxLineBytes: number;
  /** the run has ended: its log ends at `recordedSize` (or the file's end, if shorter) */
  finished: boolean;
  recordedSize: number;
  /** the page says when each line was written (`times`) */
  timestamps?: boolean;
}

/** When the lines ending at `ends` were written (see lineTimes.ts). */
async function timesOfLines(source: LogSource, ends: number[], finished: boolean): Promise<(number | null)[]> {
  const times = new LineTimes(() => source.openTimes());
  try {
    return await times.timesOf(ends, finished ? null : Date.now());
  } finally {
    await times.close();
  }
}

/**
 * A page of lines for HTTP: the last N (before `before`, to load earlier parts), or from an offset.
 * The cost is bounded by what is returned, never by the size of the file.
 */
export async function readLogPage(source: LogSource, options: PageOptions, startAt: StartAt, before?: number): Promise<LogPage> {
  const { finished, maxLineBytes } = options;
  const withEnds = options.timestamps === true;
  const handle = await source.open();
  // Not there yet, or for a moment (a cluster's Redis restarted empty: the worker ships it again
  // at the same offsets): a follower of a running log waits where it is instead of starting over.
  const waitAt = (at: number): LogPage => ({ lines: [], continued: [], ...(withEnds ? { times: [] } : {}), offset: at, next: at, complete: finished });
  if (!handle) return waitAt('offset' in startAt && !finished ? startAt.offset : 0);
  try {
    const size = (await handle.stat()).size;
    if ('offset' in startAt && startAt.offset > size && !finished && source.mayRegrow) return waitAt(startAt.offset);
    // A finished log ends at its recorded size; a growing one at its last complete line.
    const edge = finished ? Math.min(size, options.recordedSize) : await liveEdge(handle, size, maxLineBytes);
    const end = before === undefined ? edge : Math.min(before, edge);
    let batch;
    if ('offset' in startAt) {
      if (startAt.offset > size) throw new HubError(400, 'invalid_offset', `Offset ${startAt.offset} is past the end of the log (${size} bytes)`, { details: { field: 'offset' } });
      const limit = Math.max(MAX_OFFSET_RESPONSE_BYTES, maxLineBytes + 4);
      batch = await readLines(handle, Math.min(startAt.offset, end), end, maxLineBytes, limit, finished ? 'final' : 'open', 'strings', withEnds);
    } else {
      const start = await findTailStart(handle, end, startAt.tail, MAX_TAIL_BYTES);
      batch = await readLines(handle, start, end, maxLineBytes, end - start, end < edge ? 'piece' : finished ? 'final' : 'open', 'strings', withEnds);
    }
    const times = withEnds ? { times: await timesOfLines(source, batch.ends!, finished) } : {};
    return { lines: batch.lines, continued: batch.continued, ...times, offset: batch.offset, next: batch.next, complete: finished && batch.next >= edge };
  } finally {
    await handle.close();
  }
}
