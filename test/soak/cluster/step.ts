import fs from 'node:fs';
import path from 'node:path';

/**
 * The soak's one step: it holds its project's lock (a folder in the doc root, with its pid) while it
 * runs and notes a violation when it finds the lock held by a live step of the project, writes `start`/`end`
 * marks with times, and prints lines for 1-4 s, one run in five 8-10 s (seeded by the run id): several UTF-8 bytes per
 * character, stderr too, some exit codes not 0. A step killed midway leaves its lock behind, with a
 * dead pid: the next one takes it over.
 */
const STEP = `
const fs = require('node:fs');
const root = process.env.HUB_DOC_ROOT;
const id = process.env.HUB_RUN_ID;
const lock = root + '/lock';
try { fs.mkdirSync(lock); } catch {
  let other = '';
  try { other = fs.readFileSync(lock + '/pid', 'utf8'); } catch {}
  // Alive: running, not a zombie (killed, not yet reaped: kill -0 still answers for it), and a step
  // of this project (pids are reused).
  let alive = false;
  let state = '';
  try {
    if (other) {
      const stat = fs.readFileSync('/proc/' + Number(other) + '/stat', 'latin1');
      state = stat.charAt(stat.lastIndexOf(')') + 2);
      const env = fs.readFileSync('/proc/' + Number(other) + '/environ', 'latin1').split('\\0');
      alive = state !== 'Z' && state !== 'X' && env.includes('HUB_DOC_ROOT=' + root);
    }
  } catch {}
  if (alive) fs.appendFileSync(root + '/violations', 'run ' + id + ' started at ' + Date.now() + ' while pid ' + other + ' (state ' + state + ') held the lock\\n');
}
fs.writeFileSync(lock + '/pid', String(process.pid));
fs.appendFileSync(root + '/marks', 'start ' + id + ' ' + Date.now() + '\\n');
let s = Number(id) * 7919 + 17;
const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
const words = ['plain ascii', 'é à ü ß €', '日本語のログ', '😀🚀 emoji', 'tab\\there'];
// One run in five outlives a fault (a freeze is longer than the lease): its steps must be stopped in time.
const ticks = rnd() < 0.2 ? 160 + Math.floor(rnd() * 40) : 20 + Math.floor(rnd() * 60);
let i = 0;
const timer = setInterval(() => {
  for (let k = 1 + Math.floor(rnd() * 6); k > 0; k--) (rnd() < 0.1 ? process.stderr : process.stdout).write('run ' + id + ' line ' + i + '.' + k + ' ' + words[Math.floor(rnd() * words.length)] + '\\n');
  if (++i < ticks) return;
  clearInterval(timer);
  fs.appendFileSync(root + '/marks', 'end ' + id + ' ' + Date.now() + '\\n');
  fs.rmSync(lock, { recursive: true, force: true });
  process.exitCode = rnd() < 0.15 ? 1 : 0;
}, 50);
`;

/** The soak's pipelines (its step written into `dir`). */
export function clusterSoakPipelines(dir: string) {
  const file = path.join(dir, 'step.js');
  fs.writeFileSync(file, STEP);
  return { locked: { steps: [{ name: 'work', command: [process.execPath, file] }], scopes: { all: 'work' } } };
}
