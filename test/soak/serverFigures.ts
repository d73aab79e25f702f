import fs from 'node:fs';

/** Open files (not sockets, pipes or the one inotify instance): what a leaking log reader would hold. */
export const fdCount = (pid: number) => fdTargets(pid).filter((target) => target.startsWith('/')).length;
export const fdTargets = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
  try {
    return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return '?';
  }
});
export const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
