import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { monotonicMs, watchLease } from '../../pipeline-runner/leaseWatch.js';
import type { RunSpec, RunnerState } from '../../pipeline-runner/state.js';
import { runnerScript } from '../../server/paths.js';
import { WorkerAliveFile } from '../../server/worker/aliveFile.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'hub-lease-watch-test-'));

/** Watches a lease until it is found stale; resolves to how long that took by the test's clock. */
function staleAfter(spec: Parameters<typeof watchLease>[0]): { found: Promise<{ afterMs: number; unrenewedMs: number }>; stop: () => void } {
  const started = performance.now();
  let stop = () => {};
  const found = new Promise<{ afterMs: number; unrenewedMs: number }>((resolve) => {
    stop = watchLease(spec, (unrenewedMs) => resolve({ afterMs: performance.now() - started, unrenewedMs }));
  });
  return { found, stop: () => stop() };
}

test('a runner that starts late counts from when the claim was sent, not from its own start', async () => {
  // The worker froze right after its claim: the runner starts 4.9 s into a 5 s allowance.
  const dir = tempDir();
  const watch = staleAfter({ file: path.join(dir, 'alive'), stale_ms: 5000, since_mono_ms: monotonicMs() - 4900 });
  const { afterMs, unrenewedMs } = await watch.found;
  assert.ok(unrenewedMs >= 5000, `stale only once the allowance is spent (${unrenewedMs} ms)`);
  assert.ok(afterMs < 2500, `found stale ${Math.round(afterMs)} ms after starting: counted from the claim, not from the start (would be 5000 ms)`);
});

test('a claim already past its allowance is found stale at once, before any step could start', () => {
  let found = null as number | null;
  const stop = watchLease({ file: '/nonexistent/alive', stale_ms: 1000, since_mono_ms: monotonicMs() - 1500 }, (ms) => (found = ms));
  stop();
  assert.ok(found !== null && found >= 1500, `found in the call itself (${found})`);
});

test('renewals stamped by the worker keep the run going; when they stop, it is stale counted from the last one sent', async () => {
  const dir = tempDir();
  const alive = new WorkerAliveFile(dir, 'w1', 1000); // stale after 566 ms
  const spec = alive.spec(performance.now());
  const watch = staleAfter(spec);
  let stale = false;
  watch.found.then(() => (stale = true)).catch(() => {});
  let lastSent = performance.now();
  for (let i = 0; i < 15; i++) {
    lastSent = performance.now();
    alive.touch(lastSent);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.not.ok(stale, `renewed every 100 ms, still found stale after ${i + 1} renewals`);
  }
  // An answer that comes late for a renewal sent earlier does not move the deadline back.
  alive.touch(lastSent - 400);
  const { unrenewedMs } = await watch.found;
  const sinceLast = performance.now() - lastSent;
  assert.ok(unrenewedMs >= spec.stale_ms && sinceLast >= spec.stale_ms, `stale ${Math.round(unrenewedMs)} ms after the last renewal sent (${Math.round(sinceLast)} ms by the test's clock)`);
  watch.stop();
});

test('the real runner given a lease already spent starts no step and ends failed saying why', async () => {
  const dir = tempDir();
  const marker = path.join(dir, 'step-ran');
  const spec: RunSpec = {
    run_id: 7,
    log_file: path.join(dir, '7.log'),
    state_file: path.join(dir, '7.json'),
    grace_ms: 1000,
    max_log_bytes: 1 << 20,
    env: {},
    steps: [{ name: 'touch', command: ['/bin/sh', '-c', `touch ${marker}`], cwd: dir, timeout_s: null, env: {} }],
    lease: { file: path.join(dir, 'alive'), stale_ms: 3000, since_mono_ms: monotonicMs() - 10_000 },
  };
  const runner = spawn(process.execPath, [runnerScript], { stdio: ['pipe', 'ignore', 'inherit'] });
  runner.stdin.end(JSON.stringify(spec));
  const code = await new Promise<number | null>((resolve) => runner.once('exit', resolve));
  const state = JSON.parse(fs.readFileSync(spec.state_file, 'utf8')) as RunnerState;
  assert.is(state.status, 'failed');
  assert.match(state.error_message ?? '', /did not renew the run's lease/);
  assert.is(code, 3);
  assert.not.ok(fs.existsSync(marker), 'the step never ran');
  assert.is(state.steps?.[0].status, 'pending');
});

test.run();
