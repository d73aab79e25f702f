import fs from 'node:fs';
import path from 'node:path';

/**
 * A full disk, for the runner and for the server that settles its runs: the run fails, and its
 * error says so in the words of ENOSPC ("no space left on device"), which people search for.
 */
export const NO_SPACE = 'no space left on device';

/** A write refused for want of space: the disk is full (ENOSPC) or the user's quota is (EDQUOT). */
export function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Whether the file system holding `file` has no block (or no inode) left for an ordinary writer. */
export function isDiskFull(file: string): boolean {
  try {
    const stats = fs.statfsSync(path.dirname(file));
    return stats.bavail === 0 || (stats.files > 0 && stats.ffree === 0);
  } catch {
    return false;
  }
}

/** Why a run failed when the runner could not write its log or its state. */
export function noSpaceMessage(step: string | null): string {
  return `The disk of the run's log is full (${NO_SPACE}): the runner could not write the log or its state${step ? ` during step "${step}"` : ''}`;
}

/** Writes all of `text` at the end of `fd`: a short write (a nearly full disk) is continued, so a refusal throws. */
export function writeAll(fd: number, text: string | Buffer): void {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset);
}
