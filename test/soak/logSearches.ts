import fs from 'node:fs';
import type { TestHub } from '../helpers/hub.js';

/** Plain, case-insensitive and case-sensitive, regexes (one matching the empty string, one that backtracks), multi-byte, U+FFFD. */
const QUERIES: Record<string, string>[] = [
  { q: 'a' },
  { q: 'A', case: '1' },
  { q: 'LINE' },
  { q: 'a*', regex: '1' },
  { q: '(?:)', regex: '1' },
  { q: '^', regex: '1' },
  { q: '(a+)+b', regex: '1' },
  { q: 'line \\d+ é', regex: '1' },
  { q: '日本語' },
  { q: '\ufffd' },
  { q: '\ufffd', regex: '1' },
];
const STOPPED = new Set([null, 'limit', 'time_budget', 'regex_timeout']);
/** The search reads this much at a time; a line longer than that is searched in pieces (README). */
const CHUNK_BYTES = 1024 * 1024;
/** A match's line is cut at this many characters. */
const MATCH_LINE_CHARS = 2000;

export interface SearchFigures {
  searches: number;
  matches: number;
  /** matches whose offset was read back from the file and checked */
  verified: number;
  /** offsets inside a line longer than a chunk (the README's documented pieces) */
  pieceOffsets: number;
  stopped: Record<string, number>;
}

export const emptySearchFigures = (): SearchFigures => ({ searches: 0, matches: 0, verified: 0, pieceOffsets: 0, stopped: {} });

function readAt(file: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  return buffer.subarray(0, fs.readSync(file, buffer, 0, length, offset));
}

/** Is `offset` inside a line that started more than a chunk earlier? */
function insideLongLine(file: number, offset: number): boolean {
  const before = readAt(file, Math.max(0, offset - CHUNK_BYTES), Math.min(offset, CHUNK_BYTES));
  return before.length === CHUNK_BYTES && !before.includes(0x0a);
}

/**
 * One search of a run's whole log, its answer checked: well-formed, matches in file order after
 * `after`, and a sample read back from the file: each offset a line start, its line the file's.
 */
export async function searchOnce(hub: TestHub, run: { projectId: number; id: number }, logFile: string, pick: () => number, figures: SearchFigures): Promise<string[]> {
  const query = { ...QUERIES[Math.floor(pick() * QUERIES.length)], limit: String(1 + Math.floor(pick() * 1000)) };
  const where = `search of run ${run.id} for ${JSON.stringify(query)}`;
  const { status, body } = await hub.api('GET', `/api/projects/${run.projectId}/runs/${run.id}/logs/search?${new URLSearchParams(query)}`);
  figures.searches++;
  if (status === 404) return []; // removed meanwhile
  if (status !== 200) return [`${where}: answered ${status} ${JSON.stringify(body).slice(0, 200)}`];
  const mismatches: string[] = [];
  const { matches, next_after: nextAfter, complete, stopped } = body as { matches: { offset: number; line: string }[]; next_after: number; complete: boolean; stopped: string | null };
  figures.matches += matches.length;
  figures.stopped[String(stopped)] = (figures.stopped[String(stopped)] ?? 0) + 1;
  if (!STOPPED.has(stopped) || typeof complete !== 'boolean' || !Number.isInteger(nextAfter)) mismatches.push(`${where}: malformed ${JSON.stringify({ next_after: nextAfter, complete, stopped })}`);
  if (matches.length > Number(query.limit)) mismatches.push(`${where}: ${matches.length} matches for a limit of ${query.limit}`);
  for (let i = 1; i < matches.length; i++) {
    if (matches[i].offset <= matches[i - 1].offset) mismatches.push(`${where}: offsets out of order (${matches[i - 1].offset}, ${matches[i].offset})`);
  }
  let file: number;
  try {
    file = fs.openSync(logFile, 'r');
  } catch {
    return mismatches; // removed meanwhile
  }
  try {
    const size = fs.fstatSync(file).size;
    if (nextAfter > size) mismatches.push(`${where}: next_after ${nextAfter} past the file's ${size} bytes`);
    const past = matches.find((match) => match.offset >= size);
    if (past) mismatches.push(`${where}: a match at ${past.offset}, the file's end (${size} bytes): a line that is not there`);
    else if (matches.length > 0 && nextAfter <= matches.at(-1)!.offset) mismatches.push(`${where}: next_after ${nextAfter} not past the last match ${matches.at(-1)!.offset}`);
    const sample = [matches[0], matches.at(-1), matches[Math.floor(pick() * matches.length)]].filter((match) => match !== undefined);
    for (const match of new Set(sample)) {
      if (match.line.length > MATCH_LINE_CHARS) mismatches.push(`${where}: a line of ${match.line.length} characters`);
      const lineStart = match.offset === 0 || readAt(file, match.offset - 1, 1)[0] === 0x0a;
      if (!lineStart && insideLongLine(file, match.offset)) figures.pieceOffsets++;
      else if (!lineStart) mismatches.push(`${where}: offset ${match.offset} is not a line start: ${JSON.stringify(readAt(file, Math.max(0, match.offset - 20), 40).toString())}`);
      const bytes = readAt(file, match.offset, 4 * MATCH_LINE_CHARS + 4);
      const end = bytes.indexOf(0x0a);
      const text = bytes.subarray(0, end === -1 ? bytes.length : end).toString().replace(/\r$/, '');
      if (!text.startsWith(match.line)) mismatches.push(`${where}: at ${match.offset} the file has ${JSON.stringify(text.slice(0, 60))}, the match says ${JSON.stringify(match.line.slice(0, 60))}`);
      figures.verified++;
    }
  } finally {
    fs.closeSync(file);
  }
  return mismatches;
}
