import { createHash } from 'node:crypto';
import type { Follower } from './follower.js';

const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * A follower's copy (its `lines` joined) against the log `file` from where it started. The
 * protocol's documented changes to the bytes: lines are UTF-8, so bytes that are not (a step
 * killed in the middle of a character) arrive as U+FFFD; `\r\n` loses its `\r` (a step killed just
 * after writing `\r`, then the marker line); and the last line of a finished log is a line even
 * without its newline.
 */
export function compareCopy(follower: Follower, file: Buffer): { bytes: number; mismatch: string | null } {
  const expected = Buffer.from(file.subarray(follower.start!).toString('utf8').replaceAll('\r\n', '\n'));
  const label = `run ${follower.runId} (${follower.transport})`;
  const digests = follower.digests();
  if (digests) {
    // A long copy: compared by digest (no first differing byte to show).
    const withoutLast = follower.copyLength === expected.length + 1 && expected.at(-1) !== 0x0a;
    const same = follower.final === file.length && (withoutLast ? digests.withoutLast : digests.whole) === digest(expected);
    return { bytes: follower.copyLength, mismatch: same ? null : `${label}: copy of ${follower.copyLength} bytes differs from the file's ${expected.length} (complete at ${follower.final} of ${file.length}; compared by sha256)` };
  }
  let copy = Buffer.concat(follower.chunks);
  if (copy.length === expected.length + 1 && expected.at(-1) !== 0x0a) copy = copy.subarray(0, -1);
  if (follower.final === file.length && digest(copy) === digest(expected)) return { bytes: copy.length, mismatch: null };
  let at = 0;
  while (at < copy.length && copy[at] === expected[at]) at++;
  const around = (bytes: Buffer) => JSON.stringify(bytes.subarray(Math.max(0, at - 30), at + 30).toString());
  return { bytes: copy.length, mismatch: `${label}: copy of ${copy.length} bytes differs from the file's ${expected.length} (complete at ${follower.final} of ${file.length}) at byte ${at}: ${around(copy)} vs ${around(expected)}` };
}
