import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runSoak, summarise } from './soak.js';

test('a 60-second chaos soak: every client copy equals its log file, every run ends as its runner did, every follower of a removed run is told, every webhook event is delivered under one id, /api/health stays fast, the server never dies by itself, nothing is left', async () => {
  const seed = Number(process.env.SOAK_SEED ?? 20261127);
  const report = await runSoak({ seconds: Number(process.env.SOAK_SECONDS ?? 60), seed });
  console.log(`  (${summarise(report)}, seed ${seed})`);
  assert.equal(report.mismatches, []);
  assert.ok(report.runs > 5 && report.bytesCompared > 0, 'the soak did something');
});

test.run();
