/**
 * `node dist/test/soak/cluster/reproFrozenWorker.js`: the cluster soak's overlap, alone (not a test:
 * it shows the fault until it is fixed, then its output says "no overlap"). A worker frozen (SIGSTOP)
 * 10 s while its run's step holds the project's lock; the hubs give the run up after the 5 s lease and
 * the project's queued run starts on the other worker while the first step is still alive. Exit 1
 * when two runs of the project had processes alive at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startCluster } from '../../helpers/cluster.js';
import { createProject, waitFor, waitForRun } from '../../helpers/hub.js';
import { LOCKED_STEP, watchRunProcesses } from '../../helpers/runProcesses.js';

const FREEZE_MS = 10_000;
const cluster = await startCluster({ pipelines: { locked: { steps: [{ name: 'hold', command: ['sh', '-c', LOCKED_STEP] }], scopes: { all: 'hold' } } }, workers: 2 });
const [a, b] = cluster.hubs;
let watch: ReturnType<typeof watchRunProcesses> | undefined;
let overlaps = 0;
try {
  const projectId = await createProject(a, 'locked');
  const docRoot = (await a.api('GET', `/api/projects/${projectId}`)).body.doc_root as string;
  watch = watchRunProcesses(docRoot);
  const first = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
  await waitFor(() => fs.existsSync(path.join(docRoot, 'marks')), 'the first run\'s step to start', 20_000);
  const worker = cluster.workers.find((w) => fs.existsSync(path.join(w.logs, String(projectId), `${first.id}.log`)))!;
  const second = (await b.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
  worker.process.kill('SIGSTOP');
  await new Promise((resolve) => setTimeout(resolve, FREEZE_MS)); // the fault itself lasts this long
  worker.process.kill('SIGCONT');
  const ended = await waitForRun(a, projectId, first.id, ['failed', 'completed', 'cancelled'], 30_000);
  const done = await waitForRun(a, projectId, second.id, ['failed', 'completed', 'cancelled'], 40_000);
  watch.stop();
  overlaps = watch.overlaps.length;
  console.log(`worker ${worker.id} frozen ${FREEZE_MS} ms: run ${first.id} ${ended.status} (${ended.error_message}); run ${second.id} ${done.status}, started ${done.started_at}`);
  console.log(`marks: ${fs.readFileSync(path.join(docRoot, 'marks'), 'utf8').trim().split('\n').join(' | ')}`);
  console.log(overlaps === 0 ? 'no overlap' : `${overlaps} samples saw both runs alive, ${watch.overlaps[0]} … ${watch.overlaps.at(-1)}`);
} finally {
  watch?.stop();
  for (const worker of cluster.workers) worker.process.kill('SIGCONT');
  await cluster.stop();
}
process.exit(overlaps === 0 ? 0 : 1);
