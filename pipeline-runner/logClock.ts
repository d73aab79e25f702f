import fs from 'node:fs';

/**
 * The times of a log, kept beside it so the log itself stays exactly what the steps wrote: every
 * SAMPLE_MS, when the log has grown, the runner appends one record "<size> <time>\n" to
 * `<run>.times`: the log's size in bytes and the time (Unix milliseconds) it was seen at. A line
 * was written at most one interval before the first record whose size covers its end.
 *
 * Records are fixed-width (zero-padded), so a reader finds the one for any offset by a binary
 * search of positional reads, without loading the file; they are plain text for people and awk.
 */
export const SAMPLE_MS = 25;
const SIZE_DIGITS = 15;
const TIME_DIGITS = 13;
export const TIME_RECORD_BYTES = SIZE_DIGITS + 1 + TIME_DIGITS + 1;

export function formatTimeRecord(size: number, time: number): string {
  return `${String(size).padStart(SIZE_DIGITS, '0')} ${String(time).padStart(TIME_DIGITS, '0')}\n`;
}

/** One record from `bytes` at `at`; null if it is not one (a torn or foreign file). */
export function parseTimeRecord(bytes: Buffer, at: number): { size: number; time: number } | null {
  if (bytes[at + SIZE_DIGITS] !== 0x20 || bytes[at + TIME_RECORD_BYTES - 1] !== 0x0a) return null;
  const size = Number(bytes.toString('latin1', at, at + SIZE_DIGITS));
  const time = Number(bytes.toString('latin1', at + SIZE_DIGITS + 1, at + TIME_RECORD_BYTES - 1));
  return Number.isSafeInteger(size) && Number.isSafeInteger(time) ? { size, time } : null;
}

/**
 * Samples a log's size while its run goes on. Times are a help, never a reason to fail a run: a
 * times file that cannot be opened or written is left as it is.
 */
export class LogClock {
  private last = -1;
  private fd: number | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly logFd: number, file: string) {
    try {
      this.fd = fs.openSync(file, 'a');
    } catch {
      this.fd = null;
    }
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  /** Records the log's size now if it grew (also right after the runner's own lines, for their exact time). */
  sample(): void {
    if (this.fd === null) return;
    try {
      const size = fs.fstatSync(this.logFd).size;
      if (size <= this.last) return;
      const record = formatTimeRecord(size, Date.now());
      const written = fs.writeSync(this.fd, record);
      if (written < record.length) {
        // A nearly full disk took part of it: cut it off, or every later record would be out of step.
        fs.ftruncateSync(this.fd, fs.fstatSync(this.fd).size - written);
        return;
      }
      this.last = size;
    } catch {
      // a full disk: the log matters more; the times go on once they can
    }
  }

  /** A last sample, then the file is closed. */
  stop(): void {
    clearInterval(this.timer);
    this.sample();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
