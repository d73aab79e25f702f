import fs from 'node:fs';
import net from 'node:net';
import type { Masker } from './masker.js';
import { makePipeSync, type PipeEnds } from './fifoSupply.js';

/** Bytes kept back (the start of what may be a secret) are written this long after output stops. */
export const FLUSH_MS = 25;

/** What one read of the pipe may take (a pipe holds 64 KiB unless made larger). */
const READ_BYTES = 256 * 1024;

/** Writes every part, in order, at the end of `fd` (one system call for most); a refusal throws. */
function writeParts(fd: number, parts: Buffer[]): void {
  let rest = parts;
  while (rest.length > 0) {
    let written = fs.writevSync(fd, rest);
    let index = 0;
    while (index < rest.length && written >= rest[index].length) written -= rest[index++].length;
    rest = rest.slice(index);
    if (written > 0) rest[0] = rest[0].subarray(written);
  }
}

/**
 * One pipe for a step's stdout and stderr (so their order is kept, as on a file), read by the
 * runner, which masks what passes (masker.ts) and writes it to the log itself: no copy of a secret
 * ever reaches the file. The pipe is a FIFO made in a private folder (ahead, fifoSupply.ts) and
 * unlinked once open, so nothing else can open it; the runner holds its read end, so when the
 * runner dies its steps' writes fail (EPIPE) and the server kills what is left by the run's token.
 */
export class StepCapture {
  readonly writeFd: number;
  private readonly socket: net.Socket;
  private readonly ended: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  /**
   * `onWriteError`: the log refused a write (a full disk): the step is to be stopped. `pipe`: one
   * made ahead (fifoSupply.ts); without it, one is made now.
   */
  constructor(private readonly logFd: number, private readonly masker: Masker, private readonly onWriteError: (error: Error) => void, pipe: PipeEnds = makePipeSync()) {
    this.writeFd = pipe.writeFd;
    // Read into one buffer, reused (twice the speed of a new Buffer per read): what the masker
    // keeps is its own copy, and what it returns is written before the next read.
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    // (`onread` is a constructor option since Node 12; @types/node lists it for connect() only.)
    const onread: net.OnReadOpts = { buffer, callback: (bytes) => this.socketOnData(buffer.subarray(0, bytes)) };
    const options: net.SocketConstructorOpts & { onread: net.OnReadOpts } = { fd: pipe.readFd, readable: true, writable: false, onread };
    this.socket = new net.Socket(options);
    this.ended = new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.once('error', () => {}); // a read error ends it like EOF ('close' follows)
    });
  }

  /** The step has its copy: the runner's own is closed, so the pipe ends when the step's processes have all gone. */
  closeWriteEnd(): void {
    try {
      fs.closeSync(this.writeFd);
    } catch {
      // closed already
    }
  }

  /**
   * Waits for the pipe's end (every writer gone) for at most `waitMs`, then stops reading (a
   * process that escaped the step's group and kept the pipe gets EPIPE) and writes what was kept back.
   */
  async finish(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    this.socket.destroy();
    clearTimeout(this.timer);
    this.write(this.masker.end());
  }

  /** Masks and writes a read; true: go on reading. */
  private socketOnData(chunk: Buffer): boolean {
    this.write(this.masker.push(chunk));
    if (this.masker.heldBytes === 0) return true;
    // Written once output pauses for FLUSH_MS; while it flows, the next write decides.
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.timerOnFlush(), FLUSH_MS);
    return true;
  }

  private timerOnFlush(): void {
    this.timer = undefined;
    this.write(this.masker.flush());
  }

  private write(parts: Buffer[]): void {
    if (parts.length === 0 || this.failed) return;
    try {
      writeParts(this.logFd, parts);
    } catch (error) {
      this.failed = true;
      this.socket.destroy();
      this.onWriteError(error as Error);
    }
  }
}
