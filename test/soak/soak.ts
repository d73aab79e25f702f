import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import WebSocket from 'ws';
import { createProject, startHub, waitFor, type TestHub } from '../helpers/hub.js';
import { cases } from '../http/badInputCases.js';
import { findProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { Follower } from './follower.js';
import { soakPipelines } from './steps.js';

export interface SoakReport {
  seconds: number;
  runs: number;
  outcomes: Record<string, number>;
  serverKills: number;
  serverStops: number;
  runnerKills: number;
  stateCorruptions: number;
  cancels: number;
  followers: number;
  /** of them, those that asked for the lines' times */
  timestamped: number;
  resumes: number;
  badInputs: number;
  bytesCompared: number;
  mismatches: string[];
  leftoverProcesses: number;
  fdsIdle: number;
  fdsEnd: number;
  maxRssMb: number;
}

const ENV = { HUB_MAX_LINE_BYTES: '1024', HUB_CANCEL_GRACE_MS: '1000', HUB_RUNS_PER_MINUTE: '100000', HUB_DEMO: '0' };

/** A seeded generator, so a failing soak can be run again the same way (`--seed`). */
function random(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return { next, pick: <T>(items: T[]): T | undefined => items[Math.floor(next() * items.length)] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Open files (not sockets, pipes or the one inotify instance): what a leaking log reader would hold. */
const fdCount = (pid: number) => fdTargets(pid).filter((target) => target.startsWith('/')).length;
const fdTargets = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
  try {
    return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return '?';
  }
});
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/**
 * Runs runs under chaos for `seconds` (server SIGKILL/SIGTERM and restart, runner SIGKILL, cancels,
 * damaged state files, dropped and resumed WebSocket and SSE clients, bad input), then checks that
 * every client's copy equals the log file, every run ended as its runner did, and nothing is left.
 */
export async function runSoak({ seconds, seed, log = () => {} }: { seconds: number; seed: number; log?: (line: string) => void }): Promise<SoakReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-soak-'));
  const pipelines = soakPipelines(dir);
  const rng = random(seed);
  const report: SoakReport = { seconds, runs: 0, outcomes: {}, serverKills: 0, serverStops: 0, runnerKills: 0, stateCorruptions: 0, cancels: 0, followers: 0, timestamped: 0, resumes: 0, badInputs: 0, bytesCompared: 0, mismatches: [], leftoverProcesses: 0, fdsIdle: 0, fdsEnd: 0, maxRssMb: 0 };
  let hub: TestHub = await startHub({ dir, pipelines, env: ENV });
  const projects = [await createProject(hub, 'chatty'), await createProject(hub, 'chatty'), await createProject(hub, 'stubborn')];
  const runs: { projectId: number; id: number }[] = [];
  const followers: Follower[] = [];
  const stateFile = (run: { projectId: number; id: number }) => path.join(dir, 'logs', String(run.projectId), `${run.id}.json`);
  const up = () => hub.process.exitCode === null && hub.process.signalCode === null;
  const restart = async (signal: NodeJS.Signals) => {
    for (const follower of followers) follower.drop();
    await hub.stop(signal);
    hub = await startHub({ dir, pipelines, env: ENV });
  };
  const activeRuns = async () => {
    const active = [];
    for (const projectId of projects) {
      const current = (await hub.api('GET', `/api/projects/${projectId}/runs?limit=20`)).body as { id: number; status: string }[];
      active.push(...current.filter((run) => run.status === 'running' || run.status === 'pending').map((run) => ({ projectId, id: run.id, status: run.status })));
    }
    return active;
  };

  const actions: [weight: number, name: string, act: () => Promise<void>][] = [
    [30, 'start', async () => {
      const projectId = rng.pick(projects)!;
      const { status, body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: rng.next() < 0.8 ? 'all' : projectId === projects[2] ? 'all' : 'second', if_busy: 'queue' });
      if (status !== 201) throw new Error(`start answered ${status}: ${JSON.stringify(body)}`);
      runs.push({ projectId, id: body.id });
      report.runs++;
      const follower = new Follower(projectId, body.id, rng.next() < 0.6 ? 'ws' : 'sse', rng.next() < 0.2 ? Math.floor(rng.next() * 50) : null, rng.next() < 0.3);
      followers.push(follower);
      follower.connect(hub.url);
    }],
    [25, 'drop and resume a client', async () => {
      const follower = rng.pick(followers.filter((f) => !f.done));
      follower?.drop();
      await sleep(rng.next() * 300);
      follower?.connect(hub.url);
    }],
    [8, 'cancel', async () => {
      const run = rng.pick(await activeRuns());
      if (run && (await hub.api('DELETE', `/api/projects/${run.projectId}/runs/${run.id}`)).status === 202) report.cancels++;
    }],
    [6, 'kill a runner', async () => {
      const run = rng.pick((await activeRuns()).filter((r) => r.status === 'running'));
      let pid: unknown;
      try {
        pid = run && JSON.parse(fs.readFileSync(stateFile(run), 'utf8')).pid;
      } catch {
        // not written yet, or damaged by the soak itself
      }
      if (typeof pid === 'number') {
        try {
          process.kill(pid, 'SIGKILL');
          report.runnerKills++;
        } catch {
          // already gone
        }
      }
    }],
    [5, 'damage a state file', async () => {
      const run = rng.pick((await activeRuns()).filter((r) => r.status === 'running'));
      if (run && fs.existsSync(stateFile(run))) {
        fs.writeFileSync(stateFile(run), rng.next() < 0.5 ? '{not json' : '');
        report.stateCorruptions++;
      }
    }],
    [10, 'bad input', async () => {
      const [method, urlPath, body, , , , headers] = rng.pick(cases)!;
      await hub.api(method, urlPath, body, headers);
      const socket = new WebSocket(`${hub.url.replace(/^http/, 'ws')}/ws`);
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('open', resolve).once('close', resolve));
      if (socket.readyState === WebSocket.OPEN) socket.send(rng.next() < 0.5 ? Buffer.from(Array.from({ length: 64 }, () => Math.floor(rng.next() * 256))) : '{"type":"subscribe","run_id":"1;rm"}');
      socket.close();
      report.badInputs += 2;
    }],
    [3, 'SIGKILL the server', async () => {
      await restart('SIGKILL');
      report.serverKills++;
    }],
    [2, 'SIGTERM the server', async () => {
      await restart('SIGTERM');
      report.serverStops++;
    }],
  ];
  const totalWeight = actions.reduce((sum, [weight]) => sum + weight, 0);
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    let roll = rng.next() * totalWeight;
    const [, name, act] = actions.find(([weight]) => (roll -= weight) < 0)!;
    try {
      await act();
    } catch (error) {
      report.mismatches.push(`${name}: ${(error as Error).message}`);
    }
    if (!up()) report.mismatches.push(`the server died: ${hub.output().slice(-2000)}`);
    if (!up()) hub = await startHub({ dir, pipelines, env: ENV });
    report.maxRssMb = Math.max(report.maxRssMb, rssMb(hub.process.pid!));
    await sleep(50 + rng.next() * 250);
  }

  // Calm: every run ends, every client reconnects and reads to `complete`.
  log('soak: chaos over; waiting for runs and clients to finish');
  await waitFor(async () => (await activeRuns()).length === 0, 'every run to end', 120_000, 250);
  await waitFor(() => {
    for (const follower of followers) follower.connect(hub.url);
    return followers.every((follower) => follower.done || follower.errors.length > 0);
  }, 'every client to get complete', 120_000, 500);
  for (const follower of followers) follower.drop();
  await sleep(500);
  report.followers = followers.length;
  report.timestamped = followers.filter((follower) => follower.timestamps).length;
  report.resumes = followers.reduce((sum, follower) => sum + follower.resumes, 0);

  for (const follower of followers) {
    const label = `run ${follower.runId} (${follower.transport})`;
    if (follower.errors.length > 0) report.mismatches.push(`${label}: ${follower.errors.join('; ')}`);
    if (!follower.done) continue;
    const logFile = path.join(dir, 'logs', String(follower.projectId), `${follower.runId}.log`);
    const file = fs.existsSync(logFile) ? fs.readFileSync(logFile) : Buffer.alloc(0); // cancelled before it started
    let copy = Buffer.concat(follower.chunks);
    // The protocol's documented changes to the bytes: lines are UTF-8, so bytes that are not (a step
    // killed in the middle of a character) arrive as U+FFFD; `\r\n` loses its `\r` (a step killed just
    // after writing `\r`, then the marker line); and the last line of a finished log is a line even
    // without its newline.
    const expected = Buffer.from(file.subarray(follower.start!).toString('utf8').replaceAll('\r\n', '\n'));
    if (copy.length === expected.length + 1 && expected.at(-1) !== 0x0a) copy = copy.subarray(0, -1);
    const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    if (follower.final !== file.length || digest(copy) !== digest(expected)) {
      let at = 0;
      while (at < copy.length && copy[at] === expected[at]) at++;
      const around = (bytes: Buffer) => JSON.stringify(bytes.subarray(Math.max(0, at - 30), at + 30).toString());
      report.mismatches.push(`${label}: copy of ${copy.length} bytes differs from the file's ${expected.length} (complete at ${follower.final} of ${file.length}) at byte ${at}: ${around(copy)} vs ${around(expected)}`);
    }
    report.bytesCompared += copy.length;
  }

  // Every run ended as its runner said (final state file), or failed/cancelled when it could not say.
  for (const run of runs) {
    const record = (await hub.api('GET', `/api/projects/${run.projectId}/runs/${run.id}`)).body;
    report.outcomes[record.status] = (report.outcomes[record.status] ?? 0) + 1;
    let state: { status?: string } = {};
    try {
      state = JSON.parse(fs.readFileSync(stateFile(run), 'utf8'));
    } catch {
      // none, or damaged
    }
    // What the runner said: its final state; else (state file damaged) the last line it or the hub
    // wrote, `[hub] run <status>`; a run cancelled before it started has no log.
    const logFile = path.join(dir, 'logs', String(run.projectId), `${run.id}.log`);
    const lastMarker = fs.existsSync(logFile) ? /\[hub\] run (completed|failed|cancelled)\b[^\n]*\n?$/.exec(fs.readFileSync(logFile, 'utf8'))?.[1] : 'cancelled';
    const said = state.status && state.status !== 'running' ? state.status : lastMarker;
    if (record.status !== said) report.mismatches.push(`run ${run.id}: recorded ${record.status}, runner said ${said ?? 'nothing'}`);
  }

  // Nothing of any run is left running; the server's handles are back to idle; memory bounded.
  const db = new sqlite3.Database(path.join(dir, 'data', 'hub.sqlite'), sqlite3.OPEN_READONLY);
  const tokens = await new Promise<string[]>((resolve, reject) => db.all('SELECT runner_token FROM runs WHERE runner_token IS NOT NULL', (error, rows: { runner_token: string }[]) => (error ? reject(error) : resolve(rows.map((row) => row.runner_token)))));
  db.close();
  report.leftoverProcesses = tokens.reduce((sum, token) => sum + findProcessesWithEnv('HUB_RUN_TOKEN', token).length, 0);
  // The server that lived through the end, with every client gone, against a fresh one at rest.
  await sleep(1000);
  report.fdsEnd = fdCount(hub.process.pid!);
  const endTargets = fdTargets(hub.process.pid!);
  await restart('SIGTERM');
  await sleep(1000);
  report.fdsIdle = fdCount(hub.process.pid!);
  if (report.fdsEnd > report.fdsIdle) report.mismatches.push(`the server held ${report.fdsEnd} handles at the end, ${report.fdsIdle} when idle: ${endTargets.filter((t) => t.startsWith('/')).join(' ')} / ${fdTargets(hub.process.pid!).filter((t) => t.startsWith('/')).join(' ')}`);
  if (report.maxRssMb >= 200) report.mismatches.push(`server RSS reached ${report.maxRssMb.toFixed(0)} MB`);
  if (report.leftoverProcesses > 0) report.mismatches.push(`${report.leftoverProcesses} processes of finished runs are still running`);
  await hub.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return report;
}

export const summarise = (r: SoakReport) =>
  `soak: ${r.seconds} s, runs ${r.runs} (${Object.entries(r.outcomes).map(([status, count]) => `${status} ${count}`).join(', ')}), server kills ${r.serverKills} + stops ${r.serverStops}, runner kills ${r.runnerKills}, state files damaged ${r.stateCorruptions}, cancels ${r.cancels}, clients ${r.followers} (${r.timestamped} asking for times), resumes ${r.resumes}, bad inputs ${r.badInputs}, bytes compared ${r.bytesCompared}, mismatches ${r.mismatches.length}, leftover processes ${r.leftoverProcesses}, server open files ${r.fdsEnd} at the end / ${r.fdsIdle} idle, server RSS max ${r.maxRssMb.toFixed(0)} MB`;
