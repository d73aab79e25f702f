import fs from 'node:fs';

/** Which runs of which project (by doc root) have processes alive now, among the processes that carry `SOAK_MARK=mark`. */
export function aliveRuns(mark: string): Map<string, Set<number>> {
  const alive = new Map<string, Set<number>>();
  const needle = `\0SOAK_MARK=${mark}\0`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let environ: string;
    try {
      environ = `\0${fs.readFileSync(`/proc/${entry}/environ`, 'latin1')}`;
    } catch {
      continue; // gone meanwhile
    }
    if (!environ.includes(needle)) continue;
    const root = /\0HUB_DOC_ROOT=([^\0]*)\0/.exec(environ)?.[1];
    const id = /\0HUB_RUN_ID=(\d+)\0/.exec(environ)?.[1];
    if (!root || !id) continue;
    if (!alive.has(root)) alive.set(root, new Set());
    alive.get(root)!.add(Number(id));
  }
  return alive;
}

/** Pids of every process that carries `SOAK_MARK=mark` (what is left of the soak's cluster). */
export function markedProcesses(mark: string): number[] {
  const needle = `\0SOAK_MARK=${mark}\0`;
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (`\0${fs.readFileSync(`/proc/${entry}/environ`, 'latin1')}`.includes(needle)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * "Two runs of one project never execute at once", at process level: samples every `everyMs` which
 * runs have step processes alive, per project; each sample with two or more is an overlap.
 */
export class OverlapWatch {
  readonly overlaps: string[] = [];
  samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly mark: string, everyMs = 50) {
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    this.samples++;
    for (const [root, runs] of aliveRuns(this.mark)) {
      if (runs.size > 1) this.overlaps.push(`${new Date().toISOString()}: ${root}: processes of runs ${[...runs].join(' and ')} alive at once`);
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
