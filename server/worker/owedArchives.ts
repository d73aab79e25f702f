import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** Where a worker remembers the logs it owes the archive, inside its logs folder. */
const FOLDER = '.unarchived';
const NAME = /^(\d+)\.(\d+)$/;

export interface OwedLog {
  projectId: number;
  runId: number;
}

/**
 * The logs a worker still owes the archive, remembered on its own disk (an empty file per run) from
 * the claim until the archive holds the log. Memory would forget them with the worker: one killed
 * between a run's end and its archiving, or whose run a hub gave up, left the log in its Redis
 * stream alone, and a Redis restarted empty lost it (issue 22). Back, it archives them from its files.
 */
export class OwedArchives {
  private readonly dir: string;

  constructor(logsDir: string) {
    this.dir = path.join(logsDir, FOLDER);
  }

  /** Remembers that the run's log is owed (before its runner writes a byte). */
  owe({ projectId, runId }: OwedLog): void {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(this.file(projectId, runId), '');
  }

  /** The log is archived, or there is nothing to archive. */
  paid({ projectId, runId }: OwedLog): void {
    fs.rmSync(this.file(projectId, runId), { force: true });
  }

  list(): OwedLog[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return []; // none owed yet
    }
    return names.flatMap((name) => {
      const match = NAME.exec(name);
      return match ? [{ projectId: Number(match[1]), runId: Number(match[2]) }] : [];
    });
  }

  /**
   * A file holding the first `size` bytes of `file`, for the archive (a run given up by a hub is
   * recorded at what its stream had; the runner may have written on past it); `file` itself when
   * that is all of it.
   */
  async prefixOf(file: string, size: number): Promise<{ file: string; done(): Promise<void> }> {
    const { size: whole } = await fs.promises.stat(file);
    if (whole < size) throw new Error(`the log file has ${whole} bytes, its run is recorded with ${size}`);
    if (whole === size) return { file, done: async () => {} };
    const part = path.join(this.dir, `${path.basename(file)}.part`);
    if (size === 0) await fs.promises.writeFile(part, '');
    else await pipeline(fs.createReadStream(file, { start: 0, end: size - 1 }), fs.createWriteStream(part));
    return { file: part, done: () => fs.promises.rm(part, { force: true }) };
  }

  private file(projectId: number, runId: number): string {
    return path.join(this.dir, `${projectId}.${runId}`);
  }
}
