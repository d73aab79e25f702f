import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runClusterSoak, summariseCluster } from './cluster/clusterSoak.js';

// The cluster chaos soak for a minute (docs/reliability.md "Cluster chaos soak"); longer runs:
// `npm run soak -- --cluster --minutes N [--seed S]`.
test('a 60-second cluster chaos soak (hubs, workers, PostgreSQL and Redis killed, frozen, drained, restarted): every client copy equals /logs/raw with one complete, /logs/raw agrees with the worker\'s file, every run ends, never two runs of a project at once, nothing left', async () => {
  const seed = Number(process.env.SOAK_SEED ?? 20261206);
  const report = await runClusterSoak({ seconds: Number(process.env.SOAK_SECONDS ?? 60), seed });
  console.log(`  (${summariseCluster(report)})`);
  if (report.mismatches.length > 0) console.log(report.timeline.slice(-40).join('\n'));
  assert.equal(report.mismatches, [], 'every copy exact, every run ended');
  assert.is(report.overlaps, 0, 'never two runs of a project at once');
  assert.is(report.leftoverProcesses, 0, 'nothing left running');
  assert.ok(report.runs > 5 && report.bytesCompared > 0 && Object.values(report.faults).some((count) => count > 0), 'the soak did something');
});

test.run();
