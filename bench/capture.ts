/**
 * Secrets masked at capture (pipeline-runner/capture.ts): what the runner's pipe and masker cost
 * against a step writing straight to its log file. Every run takes the pipe (0 secrets: a project
 * without secrets, whose steps may still add masks with ::add-mask::).
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestHub } from '../test/helpers/hub.js';
import { StepCapture } from '../pipeline-runner/capture.js';
import { Masker } from '../pipeline-runner/masker.js';
import { connectClients, createBenchProject, follow, writerScript } from './harness.js';
import { Histogram } from './histogram.js';
import { LINE_BYTES } from './lineFormat.js';
import { closeAll, correctness, ms, type Result } from './scenarios.js';
import { medianOfRounds, type Summary } from './stats.js';

const secretValues = (count: number) => Array.from({ length: count }, () => randomBytes(24).toString('base64url'));

/**
 * Seconds for a step to put `source` into `file` as fast as it can (`cat`: the bench's own writer
 * tops out near 300 MB/s on this machine, under what is measured): straight, or through a capture
 * with `secrets`.
 */
async function writeLog(source: string, file: string, secrets: number | null): Promise<number> {
  fs.writeFileSync(file, '');
  const fd = fs.openSync(file, 'a');
  try {
    const capture = secrets === null ? null : new StepCapture(fd, new Masker(secretValues(secrets)), (error) => { throw error; });
    const output = capture ? capture.writeFd : fd;
    const started = performance.now();
    const writer = spawn('cat', [source], { stdio: ['ignore', output, 'inherit'] });
    capture?.closeWriteEnd();
    await new Promise((resolve) => writer.once('exit', resolve));
    await capture?.finish(5000);
    const seconds = (performance.now() - started) / 1000;
    if (fs.fstatSync(fd).size !== fs.statSync(source).size) throw new Error(`the log has ${fs.fstatSync(fd).size} bytes, expected ${fs.statSync(source).size}`);
    return seconds;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

/** Seconds for `cat source | cat > file`: what a pipe between two native processes carries on this machine. */
async function nativePipe(source: string, file: string): Promise<number> {
  const started = performance.now();
  await new Promise((resolve) => spawn('sh', ['-c', 'cat "$0" | cat > "$1"', source, file], { stdio: 'ignore' }).once('exit', resolve));
  const seconds = (performance.now() - started) / 1000;
  fs.rmSync(file, { force: true });
  return seconds;
}

/**
 * Throughput of a step's output into its log through the runner's capture with `secrets` secrets,
 * against the same writer straight to the file, in alternating rounds (the best of each: the
 * writer's own speed is the ceiling of both).
 */
export async function captureThroughput(dir: string, secrets: number, count: number, rounds: number): Promise<Result> {
  const source = path.join(dir, 'capture-source.log');
  const file = path.join(dir, `capture-${secrets}.log`);
  // The bench's lines (sequence, time, padding), with the URLs and key=value pairs of real logs in the padding.
  await new Promise((resolve) => spawn(process.execPath, [writerScript, String(count), '0', source], { stdio: 'ignore' }).once('exit', resolve));
  let direct = Infinity;
  let captured = Infinity;
  let piped = Infinity;
  try {
    for (let round = 0; round < rounds; round++) {
      direct = Math.min(direct, await writeLog(source, file, null));
      captured = Math.min(captured, await writeLog(source, file, secrets));
      piped = Math.min(piped, await nativePipe(source, file));
    }
  } finally {
    fs.rmSync(source, { force: true });
  }
  const mb = (count * LINE_BYTES) / 1e6;
  return {
    scenario: `capture ${mb.toFixed(0)} MB through the masking pipe, ${secrets} secrets`,
    hub: `${(mb / captured).toFixed(0)} MB/s`,
    baseline: `straight to the file: ${(mb / direct).toFixed(0)} MB/s; cat | cat: ${(mb / piped).toFixed(0)} MB/s`,
    ratio: captured / direct,
    target: '≥ 500 MB/s',
    met: mb / captured >= 500,
    lost: 0,
    duplicated: 0,
    data: { secrets, bytes: count * LINE_BYTES, capturedSeconds: captured, directSeconds: direct, nativePipeSeconds: piped },
  };
}

/** Line latency from the step to a subscriber for a run whose project has `secrets` secrets. */
async function followOnce(hub: TestHub, secrets: number, rate: number, seconds: number): Promise<{ summary: Summary; lost: number; duplicated: number }> {
  const count = rate * seconds;
  const projectId = await createBenchProject(hub, count, rate);
  for (const [index, value] of secretValues(secrets).entries()) {
    const { status } = await hub.api('PUT', `/api/projects/${projectId}/secrets/BENCH_${index}`, { value });
    if (status !== 201) throw new Error(`secret not set: ${status}`);
  }
  const [socket] = await connectClients(hub, 1);
  const histogram = new Histogram();
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const client = follow(socket, body.id, histogram, Math.ceil(rate * 0.2));
  await Promise.race([client.completed, new Promise((resolve) => setTimeout(resolve, 60_000))]);
  closeAll([socket]);
  return { summary: histogram.summary(), ...correctness([client.collector], count) };
}

/** The latency a project's secrets add to each line (the capture's hold-back and copy), against the same run without. */
export async function captureLatency(hub: TestHub, secrets: number, rate: number, seconds: number, rounds: number): Promise<Result> {
  await followOnce(hub, 0, rate, 1);
  await followOnce(hub, secrets, rate, 1);
  const plain: Summary[] = [];
  const masked: Summary[] = [];
  let errors = { lost: 0, duplicated: 0 };
  for (let round = 0; round < rounds; round++) {
    plain.push((await followOnce(hub, 0, rate, seconds)).summary);
    const run = await followOnce(hub, secrets, rate, seconds);
    masked.push(run.summary);
    errors = { lost: errors.lost + run.lost, duplicated: errors.duplicated + run.duplicated };
  }
  const h = medianOfRounds(masked);
  const b = medianOfRounds(plain);
  return {
    scenario: `line latency ${rate}/s with ${secrets} secrets masked`,
    hub: ms(h),
    baseline: `no secrets (the pipe, nothing to mask): ${ms(b)}`,
    ratio: h.p99 / b.p99,
    target: 'p99 added ≤ 30 ms',
    met: h.p99 - b.p99 <= 30,
    ...errors,
    data: { masked: h, plain: b, maskedRounds: masked, plainRounds: plain },
  };
}
