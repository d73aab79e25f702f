import type { ChildProcess } from 'node:child_process';

/** Whether the child has ended: `exitCode` stays null after a death by signal, so both are looked at. */
export const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Resolves when the child has exited (at once if it already has), or after `ms` with false. */
export function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(hasExited(child));
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Asks a child to stop (`signal` to `pid`, by default the child's own), then SIGKILLs it (and `pid`)
 * if it has not exited after `graceMs`. Resolves once it has exited.
 */
export async function stopProcess(child: ChildProcess, { signal = 'SIGTERM', graceMs = 10_000, pid = child.pid }: { signal?: NodeJS.Signals; graceMs?: number; pid?: number } = {}): Promise<void> {
  if (hasExited(child)) return;
  signalQuietly(pid, signal);
  if (await waitForExit(child, graceMs)) return;
  signalQuietly(pid, 'SIGKILL');
  if (pid !== child.pid) signalQuietly(child.pid, 'SIGKILL');
  await waitForExit(child, 5000);
}

/**
 * SIGKILLs at once, waiting for nothing: `pid` (the real server when a wrapper such as runuser is in
 * between and passes no signal on), the child's process group when it leads one (spawned detached:
 * a server's own children with it), and the child.
 */
export function killProcess(child: ChildProcess, { pid = child.pid, group = false }: { pid?: number; group?: boolean } = {}): void {
  if (pid !== child.pid) signalQuietly(pid, 'SIGKILL');
  if (group && child.pid !== undefined) signalQuietly(-child.pid, 'SIGKILL');
  if (!hasExited(child)) signalQuietly(child.pid, 'SIGKILL');
}

function signalQuietly(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
