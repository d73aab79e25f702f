import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Pipes made by one `mkfifo` (16 descriptors): a run rarely has more steps. */
export const BATCH = 8;

/** The two ends of a FIFO that is no longer on disk: nothing but their holders can open it. */
export interface PipeEnds {
  readFd: number;
  writeFd: number;
}

/** Opens both ends of `fifo` (the read end first and not blocking, so opening the write end does not wait). */
function openEnds(fifo: string): PipeEnds {
  const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    return { readFd, writeFd: fs.openSync(fifo, fs.constants.O_WRONLY) };
  } catch (error) {
    fs.closeSync(readFd);
    throw error;
  }
}

/** One pipe made now, in a folder of its own, removed before this returns (tests, the bench). */
export function makePipeSync(): PipeEnds {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-capture-'));
  try {
    const fifo = path.join(dir, 'out');
    const made = spawnSync('mkfifo', ['-m', '600', fifo], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`mkfifo failed: ${made.error?.message ?? made.stderr.trim()}`);
    return openEnds(fifo);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Makes BATCH pipes with one `mkfifo` and opens them; the folder is gone once it resolves. */
function makeBatch(): Promise<PipeEnds[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-capture-'));
  const paths = Array.from({ length: BATCH }, (_, index) => path.join(dir, String(index)));
  return new Promise<void>((resolve, reject) => {
    let stderr = '';
    const child = spawn('mkfifo', ['-m', '600', ...paths], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`mkfifo failed: ${stderr.trim() || `exit code ${code}`}`))));
  })
    .then(() => {
      const ends: PipeEnds[] = [];
      try {
        for (const fifo of paths) ends.push(openEnds(fifo));
        return ends;
      } catch (error) {
        for (const { readFd, writeFd } of ends) closeEnds(readFd, writeFd);
        throw error;
      }
    })
    .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

function closeEnds(...fds: number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed already
    }
  }
}

/**
 * The pipes of a run's step captures (capture.ts), made ahead: Node cannot make a FIFO, and
 * `mkfifo` is a process of its own (a fork: 30–150 ms on a busy machine), which would otherwise
 * delay every step's start. The first batch is made while the runner waits for its run, the next
 * while a step runs. Each is opened at once and its name removed, so nothing is left on disk once
 * a batch is made (the ends are the runner's descriptors, closed on exec for its steps); a runner
 * killed (SIGKILL) while its `mkfifo` runs leaves that batch's folder.
 */
export class FifoSupply {
  private batch: Promise<PipeEnds[]> = this.makeAhead();
  private ready: PipeEnds[] = [];
  private closed = false;

  /** A pipe no step has used; none (undefined) when it could not be made ahead: the capture makes its own. */
  async take(): Promise<PipeEnds | undefined> {
    if (this.ready.length === 0 && !this.closed) {
      // `batch` holds only pipes nobody took, so close() may close what it holds.
      const batch = this.batch;
      this.batch = Promise.resolve([]);
      this.ready = await batch.catch(() => []);
    }
    if (this.closed) await this.close(); // closed while it waited
    const pipe = this.ready.shift();
    if (this.ready.length === 0 && !this.closed) this.batch = this.makeAhead();
    return pipe;
  }

  /**
   * Closes the pipes no step took, once a batch on its way is made: its `mkfifo` would otherwise
   * make them after the runner has gone, and nobody would remove them. Safe to call twice.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const { readFd, writeFd } of this.ready.splice(0)) closeEnds(readFd, writeFd);
    const batch = this.batch;
    this.batch = Promise.resolve([]);
    for (const { readFd, writeFd } of await batch.catch(() => [])) closeEnds(readFd, writeFd);
  }

  private makeAhead(): Promise<PipeEnds[]> {
    let made: Promise<PipeEnds[]>;
    try {
      made = makeBatch();
    } catch (error) {
      made = Promise.reject(error as Error);
    }
    made.catch(() => {}); // a batch made ahead may never be waited for; take() sees its failure
    return made;
  }
}
