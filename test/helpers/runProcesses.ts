import fs from 'node:fs';
import { findProcessesWithEnv } from '../../pipeline-runner/processes.js';

/**
 * A step that holds its project's lock (a folder in its doc root, with its shell's pid) while it
 * runs: it notes a violation when it finds the lock held by a live process. The project's first run
 * sleeps long enough to outlive the fault; the later ones end at once. `marks` says which started
 * and which ended.
 */
export const LOCKED_STEP = `
root="$HUB_DOC_ROOT"
if ! mkdir "$root/lock" 2>/dev/null; then
  other=$(cat "$root/lock/pid" 2>/dev/null)
  # alive: not a zombie (killed, not yet reaped: kill -0 still answers), and a step of this project (pids are reused)
  state=$(sed 's/.*) //' "/proc/$other/stat" 2>/dev/null | cut -c1)
  if [ -n "$other" ] && [ -n "$state" ] && [ "$state" != Z ] && tr '\\0' '\\n' < "/proc/$other/environ" 2>/dev/null | grep -qxF "HUB_DOC_ROOT=$root"; then echo "run $HUB_RUN_ID started while pid $other (state $state) held the lock" >> "$root/violations"; fi
fi
echo $$ > "$root/lock/pid"
if [ -e "$root/marks" ]; then pause=1; else pause=25; fi
echo "start $HUB_RUN_ID" >> "$root/marks"
echo "step of run $HUB_RUN_ID started"
i=0; while [ $i -lt $((pause * 10)) ]; do echo "tick $i of run $HUB_RUN_ID"; sleep 0.1; i=$((i + 1)); done
echo "end $HUB_RUN_ID" >> "$root/marks"
rm -rf "$root/lock"
`;

/**
 * Samples, every 20 ms, which runs of the project (by its doc root) have processes alive, by the run
 * id every step process carries in its environment: "two runs of one project never execute at once",
 * checked at process level. Process ids are one namespace for every machine of a test.
 */
export function watchRunProcesses(docRoot: string): { overlaps: string[]; seen: Set<number>; stop(): void } {
  const overlaps: string[] = [];
  const seen = new Set<number>();
  const timer = setInterval(() => {
    const alive = new Set<number>();
    for (const pid of findProcessesWithEnv('HUB_DOC_ROOT', docRoot)) {
      try {
        const id = /(?:^|\0)HUB_RUN_ID=(\d+)\0/.exec(fs.readFileSync(`/proc/${pid}/environ`, 'latin1'))?.[1];
        if (id) alive.add(Number(id));
      } catch {
        // gone meanwhile
      }
    }
    for (const id of alive) seen.add(id);
    if (alive.size > 1) overlaps.push(`${new Date().toISOString()}: processes of runs ${[...alive].join(' and ')} alive at once`);
  }, 20);
  return { overlaps, seen, stop: () => clearInterval(timer) };
}
