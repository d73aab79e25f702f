import fs from 'node:fs';

/** Sends a signal to a whole process group; false when the group is already gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function environHas(environ: Buffer, needle: Buffer): boolean {
  return environ.subarray(0, needle.length).equals(needle) || environ.includes(Buffer.concat([Buffer.from([0]), needle]));
}

/** Whether one process's environment holds `name=value`. */
export function processHasEnv(pid: number, name: string, value: string): boolean {
  try {
    return environHas(fs.readFileSync(`/proc/${pid}/environ`), Buffer.from(`${name}=${value}\0`));
  } catch {
    return false;
  }
}

/**
 * Pids whose environment holds `name=value`. Every process of a run inherits the run's token,
 * so this finds the ones that left its process group (setsid, double fork), as CI servers do.
 */
export function findProcessesWithEnv(name: string, value: string): number[] {
  const needle = Buffer.from(`${name}=${value}\0`);
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return found; // not Linux: the process-group kill is all we have
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`);
      if (environHas(environ, needle)) found.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** SIGKILLs every process carrying the token; returns how many were found. */
export function killProcessesWithEnv(name: string, value: string): number {
  const pids = findProcessesWithEnv(name, value);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids.length;
}
