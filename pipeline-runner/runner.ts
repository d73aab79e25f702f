/**
 * The runner: one process per run, detached from the server so that it outlives a server restart.
 * It reads its RunSpec on stdin, runs the steps in order with their stdout and stderr on a pipe it
 * reads, masks and writes to the log file (capture.ts), and reports through the state file.
 */
import fs from 'node:fs';
import { runStep, type StepOutcome } from './step.js';
import { killProcessesWithEnv } from './processes.js';
import { watchLease } from './leaseWatch.js';
import { LogClock } from './logClock.js';
import { Masker } from './masker.js';
import { FifoSupply } from './fifoSupply.js';
import { isDiskFull, isNoSpace, NO_SPACE, noSpaceMessage, writeAll } from './noSpace.js';
import { READY_LINE, RUNNER_CRASH_EXIT_CODE, RUNNER_EXIT_CODES, RUNNER_NO_SPACE_EXIT_CODE, TOKEN_VARIABLE, type RunSpec, type RunnerState, writeStateFile } from './state.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Appends a line of the runner's own to the log, on a line of its own. */
function writeMarker(fd: number, text: string): void {
  const size = fs.fstatSync(fd).size;
  let needsNewline = false;
  if (size > 0) {
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    needsNewline = last[0] !== 0x0a;
  }
  writeAll(fd, `${needsNewline ? '\n' : ''}${text}\n`);
}

function describeFailure(step: string, outcome: StepOutcome): string {
  switch (outcome.kind) {
    case 'spawn_error':
      return `Step "${step}" could not start: ${outcome.message}`;
    case 'timeout':
      return `Step "${step}" timed out after ${outcome.timeoutS} s`;
    case 'log_limit':
      return `Step "${step}" was stopped: the log limit of ${outcome.limit} bytes was reached`;
    case 'log_write':
      return `Step "${step}" was stopped: its output could not be written to the log (${outcome.message})`;
    case 'exit':
      return outcome.signal
        ? `Step "${step}" was killed by signal ${outcome.signal}`
        : `Step "${step}" exited with code ${outcome.code}`;
    case 'cancelled':
      return `Run cancelled during step "${step}"`;
  }
}

/** A step may say why it failed in HUB_ERROR_FILE; the first line goes into the run's error message. */
function readStepReason(file: string): string {
  try {
    const reason = fs.readFileSync(file, 'utf8').split('\n')[0].trim().slice(0, 500);
    fs.rmSync(file, { force: true });
    return reason ? `: ${reason}` : '';
  } catch {
    return '';
  }
}

/** Runs the run on stdin; resolves to the process's exit code, which tells the outcome too. */
async function main(): Promise<number> {
  // Started and loaded: whoever started it may start the next one now (one line, then stdout is done).
  process.stdout.on('error', () => {});
  process.stdout.end(READY_LINE);
  fifos = new FifoSupply(); // the first steps' pipes are made while the run is on its way
  const input = await readStdin();
  if (input.trim() === '') return 0; // started ahead of time, and the server went away first
  const spec = JSON.parse(input) as RunSpec;
  logFile = spec.log_file;
  const now = () => new Date().toISOString();
  const state: RunnerState = {
    run_id: spec.run_id,
    pid: process.pid,
    status: 'running',
    current_step: null,
    progress_current: 0,
    progress_total: spec.steps.length,
    exit_code: null,
    signal: null,
    error_message: null,
    started_at: now(),
    finished_at: null,
    updated_at: now(),
    steps: spec.steps.map((step) => ({ name: step.name, status: 'pending', started_at: null, finished_at: null, exit_code: null, signal: null, log_start: null, log_end: null })),
  };
  const steps = state.steps!;
  const save = () => {
    state.updated_at = now();
    writeStateFile(spec.state_file, state);
  };

  let fd: number;
  try {
    fd = fs.openSync(spec.log_file, 'a+'); // +: writeMarker reads the last byte
  } catch (error) {
    Object.assign(state, { status: 'failed', error_message: `Cannot open the log file: ${(error as Error).message}`, finished_at: now() });
    save();
    return RUNNER_EXIT_CODES.failed;
  }
  // The times of the log's lines, beside it (see logClock.ts).
  const clock = spec.times_file ? new LogClock(fd, spec.times_file) : null;
  clock?.start();
  // Every run's steps write through the runner, which masks the project's secrets and what a step
  // adds with ::add-mask::: a project without secrets may still add masks, so its output passes
  // too (an empty masker holds back only the start of an ::add-mask:: line; bench/capture.ts).
  const masker = new Masker(Object.values(spec.secrets ?? {}));
  const mark = (text: string) => {
    writeMarker(fd, masker.maskText(text));
    masker.startLine();
    clock?.sample();
  };
  // The disk is full: the run cannot go on without its log and state, so it fails saying why.
  const failForNoSpace = (error: unknown) => {
    if (!isNoSpace(error)) throw error;
    if (state.error_message?.includes(NO_SPACE)) return; // it says so already
    const message = noSpaceMessage(state.current_step);
    if (state.status === 'running' || state.status === 'completed') Object.assign(state, { status: 'failed', exit_code: null, signal: null, error_message: message });
    else state.error_message = `${state.error_message}; ${message}`;
    for (const step of steps) if (step.status === 'running') Object.assign(step, { status: 'failed', finished_at: now() });
  };

  const cancel = new AbortController();
  process.on('SIGTERM', () => cancel.abort());
  process.on('SIGINT', () => cancel.abort());
  process.on('SIGHUP', () => {}); // the server's terminal going away is not a reason to stop

  const token = process.env[TOKEN_VARIABLE] ?? '';
  // A worker's run: once the worker stops renewing its lease, the steps stop at once (no grace: the
  // lease may expire soon after, and then the project's next run may start on another machine).
  let leaseLost: string | null = null;
  const stopWatching = spec.lease
    ? watchLease(spec.lease, (unrenewedMs) => {
        leaseLost = `its worker did not renew the run's lease for ${Math.round(unrenewedMs)} ms (gone, paused or cut off): its steps were stopped before the lease could expire`;
        if (token) killProcessesWithEnv(TOKEN_VARIABLE, token);
        cancel.abort();
      })
    : () => {};
  try {
    save();
    for (const [index, step] of spec.steps.entries()) {
      if (cancel.signal.aborted) break;
      state.current_step = step.name;
      // Its part of the log starts with its header line.
      Object.assign(steps[index], { status: 'running', started_at: now(), log_start: fs.fstatSync(fd).size });
      save();
      mark(`[hub] step ${index + 1}/${spec.steps.length}: ${step.name}`);
      const errorFile = `${spec.state_file}.error`;
      fs.rmSync(errorFile, { force: true });
      const pipe = await fifos.take();
      const outcome = await runStep({
        step,
        fd,
        env: { ...spec.env, HUB_STEP: step.name, HUB_ERROR_FILE: errorFile },
        secrets: spec.secrets,
        graceMs: spec.grace_ms,
        maxLogBytes: spec.max_log_bytes,
        cancel: cancel.signal,
        masker,
        pipe,
      });
      Object.assign(steps[index], {
        status: outcome.kind === 'exit' && outcome.code === 0 ? 'completed' : outcome.kind === 'cancelled' ? 'cancelled' : 'failed',
        finished_at: now(),
        exit_code: outcome.kind === 'exit' ? outcome.code : null,
        signal: outcome.kind === 'exit' ? outcome.signal : null,
        log_end: fs.fstatSync(fd).size,
      });
      if (outcome.kind === 'exit' && outcome.code === 0) {
        state.progress_current = index + 1;
        save();
        continue;
      }
      // A step whose output was refused usually just exits 1: the disk says why.
      const full = outcome.kind !== 'cancelled' && isDiskFull(spec.log_file) ? ` (${NO_SPACE}: the disk of the run's log is full)` : '';
      if (outcome.kind === 'log_write' && isNoSpace(outcome.error)) {
        failForNoSpace(outcome.error); // the disk is full: said so, as for the runner's own writes
        break;
      }
      const reason = readStepReason(errorFile);
      const message = describeFailure(step.name, outcome) + full + masker.maskText(reason);
      if (outcome.kind === 'log_limit') mark(`[hub] log limit reached (${spec.max_log_bytes} bytes): step "${step.name}" stopped`);
      Object.assign(state, {
        status: outcome.kind === 'cancelled' ? 'cancelled' : 'failed',
        exit_code: outcome.kind === 'exit' ? outcome.code : null,
        signal: outcome.kind === 'exit' ? outcome.signal : null,
        error_message: message,
      });
      break;
    }
  } catch (error) {
    failForNoSpace(error);
  }
  stopWatching();
  if (leaseLost !== null) {
    Object.assign(state, { status: 'failed', exit_code: null, signal: null, error_message: leaseLost });
    for (const step of steps) if (step.status === 'running' || step.status === 'cancelled') step.status = 'failed';
  } else if (state.status === 'running') {
    if (cancel.signal.aborted && state.progress_current < state.progress_total) {
      Object.assign(state, { status: 'cancelled', error_message: 'Run cancelled' });
    } else {
      Object.assign(state, { status: 'completed', exit_code: 0 });
    }
  }
  // Nothing of the run may outlive it, not even what escaped its process group.
  if (token) killProcessesWithEnv(TOKEN_VARIABLE, token);
  try {
    mark(`[hub] run ${state.status}${state.error_message ? `: ${state.error_message}` : ''}`);
  } catch (error) {
    failForNoSpace(error);
  }
  clock?.stop();
  try {
    fs.fsyncSync(fd);
  } catch (error) {
    failForNoSpace(error);
  }
  fs.closeSync(fd);
  state.finished_at = now();
  save(); // when the disk refuses even this, the exit code says why (see the end of this file)
  return RUNNER_EXIT_CODES[state.status as keyof typeof RUNNER_EXIT_CODES];
}

/** Where a crash of the runner itself is reported once its run is known. */
let logFile: string | undefined;
/** The steps' pipes, made ahead; closed at the end, once a batch on its way is made (or its FIFOs would be left on disk). */
let fifos: FifoSupply | undefined;

main().then(
  async (code) => {
    await fifos?.close();
    process.exit(code);
  },
  async (error: unknown) => {
    await fifos?.close();
    // A full disk (the final state could not be written) is no crash: the exit code tells the server.
    if (isNoSpace(error)) process.exit(RUNNER_NO_SPACE_EXIT_CODE);
    const text = `[hub] runner failed: ${(error as Error).stack ?? String(error)}\n`;
    try {
      if (logFile) fs.appendFileSync(logFile, text);
      else process.stderr.write(text);
    } catch {
      // nowhere left to say it; the server reports the runner's exit
    }
    process.exit(RUNNER_CRASH_EXIT_CODE);
  },
);
