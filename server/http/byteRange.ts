import { HubError } from '../errors.js';

export const MAX_RANGES = 5;

/**
 * Parses a Range header against a file of `size` bytes: one range gives [start, end] (inclusive);
 * several (up to MAX_RANGES) are ignored and the whole file is sent, as RFC 9110 allows; more are
 * rejected; a range past the end is 416 with `Content-Range: bytes *\/size`.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const match = /^bytes=(.+)$/.exec(header.trim());
  if (!match) return null; // another unit: ignored
  const specs = match[1].split(',').map((spec) => spec.trim());
  if (specs.length > MAX_RANGES) throw new HubError(416, 'too_many_ranges', `At most ${MAX_RANGES} ranges are accepted, got ${specs.length}`);
  if (specs.length > 1) return null;
  const parts = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!parts || (parts[1] === '' && parts[2] === '')) throw unsatisfiable(size, `Malformed range ${JSON.stringify(specs[0])}`);
  let start: number;
  let end: number;
  if (parts[1] === '') {
    const suffix = Number(parts[2]);
    if (suffix === 0) throw unsatisfiable(size, 'An empty suffix range');
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(parts[1]);
    end = parts[2] === '' ? size - 1 : Math.min(Number(parts[2]), size - 1);
    if (parts[2] !== '' && Number(parts[2]) < start) throw unsatisfiable(size, `Range ${specs[0]} ends before it starts`);
  }
  if (start >= size || !Number.isSafeInteger(start)) throw unsatisfiable(size, `Range ${specs[0]} starts past the end of the log (${size} bytes)`);
  return { start, end };
}

function unsatisfiable(size: number, message: string): HubError {
  return new HubError(416, 'range_not_satisfiable', message, { headers: { 'Content-Range': `bytes */${size}` } });
}
