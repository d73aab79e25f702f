/**
 * A CPU budget for one part of the bench (cgroup v1, as root): a part's capacity is bounded as on a
 * machine of its own. `/sys/fs/cgroup/cpu/runhub-bench/<name>`, removed by `remove()`.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup/cpu/runhub-bench';
/**
 * The quota's period: 10 ms, not the kernel's 100 ms default. A part at 0.1 CPU would otherwise run
 * 10 ms then wait 90 ms, a stall no machine of its own has, which the p99 bounds would measure.
 */
const PERIOD_US = 10_000;
const MIN_QUOTA_US = 1000;
/** cpu.shares of a capped part (the root's processes have 1024 between them) */
const SHARES_WHEN_CAPPED = 16_384;

export interface CpuBudget {
  /** moves process `pid` (all its threads) into the budget */
  add(pid: number): void;
  remove(): void;
}

export function cgroupsAvailable(): boolean {
  try {
    fs.mkdirSync(ROOT, { recursive: true });
    return true;
  } catch {
    return false;
  }
}

/** A budget of `cpus` CPUs (0.4: 4 ms of every 10 ms); `cpus` null: accounted, not capped. */
export function cpuBudget(name: string, cpus: number | null): CpuBudget {
  const dir = path.join(ROOT, name);
  fs.mkdirSync(dir, { recursive: true });
  // The kernel refuses a quota under 1 ms: a smaller budget gets a longer period (0.05 CPU: 1 ms of every 20).
  const period = cpus === null ? PERIOD_US : Math.max(PERIOD_US, Math.ceil(MIN_QUOTA_US / cpus));
  fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(period));
  fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), cpus === null ? '-1' : String(Math.round(cpus * period)));
  // A capped part also gets a large share, so other work on the machine cannot take its budget from
  // it: the quota is both its ceiling and, as on a machine of its own, what it can count on.
  if (cpus !== null) fs.writeFileSync(path.join(dir, 'cpu.shares'), String(SHARES_WHEN_CAPPED));
  return {
    add: (pid) => fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid)),
    remove() {
      // Processes go back to the root group first: a group with members cannot be removed.
      for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          fs.writeFileSync('/sys/fs/cgroup/cpu/cgroup.procs', pid);
        } catch {
          // gone meanwhile
        }
      }
      fs.rmdirSync(dir);
    },
  };
}

export function removeBudgetRoot(): void {
  try {
    fs.rmdirSync(ROOT);
  } catch {
    // another bench uses it, or it is gone
  }
}
