import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../../helpers/cluster.js';
import { waitFor } from '../../helpers/hub.js';
import { rejectionCount, rejectionsSince } from '../../helpers/rejections.js';
import { call, ClusterFollower, OffsetPoller, rawLog } from './clients.js';
import { ClusterFaults, FAULT_KINDS, type FaultKind } from './faults.js';
import { emptyClusterReport, summariseCluster, type ClusterSoakReport } from './report.js';
import { aliveRuns, markedProcesses, OverlapWatch } from './runProcesses.js';
import { clusterSoakPipelines } from './step.js';

export { summariseCluster, type ClusterSoakReport };

const PROJECTS = 4;
/** Runs of one project started and not yet seen to end, at most (so that every run ends soon after the chaos). */
const MAX_OPEN_PER_PROJECT = 3;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const ENV = { HUB_RUNS_PER_MINUTE: '100000', HUB_CANCEL_GRACE_MS: '500', HUB_MAX_LINE_BYTES: '1024' };

/** A seeded generator, so a failing soak can be run again the same way (`--seed`). */
function random(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return { next, pick: <T>(items: readonly T[]): T | undefined => items[Math.floor(next() * items.length)] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A copy as the protocol documents it against the log's bytes: lines are UTF-8 (U+FFFD for the rest), `\r\n` loses its `\r`, the last line gets a newline. */
function sameAsLog(copy: Buffer, log: Buffer): { same: boolean; at: number } {
  const expected = Buffer.from(log.toString('utf8').replaceAll('\r\n', '\n'));
  const trimmed = copy.length === expected.length + 1 && expected.at(-1) !== 0x0a && copy.at(-1) === 0x0a ? copy.subarray(0, -1) : copy;
  if (trimmed.equals(expected)) return { same: true, at: -1 };
  let at = 0;
  while (at < trimmed.length && trimmed[at] === expected[at]) at++;
  return { same: false, at };
}

interface SoakRun {
  projectId: number;
  id: number;
  followers: ClusterFollower[];
  pollers: OffsetPoller[];
}

/**
 * The cluster under faults (issue 22): PostgreSQL, Redis, 2 hubs and 2 workers run runs of several
 * projects while a seeded schedule injects real faults one after another (hubs SIGKILLed or drained,
 * workers SIGKILLed with or without their runners, or frozen; PostgreSQL frozen or its connections
 * terminated; Redis frozen, restarted, restarted empty), and WebSocket followers and HTTP pollers
 * follow the runs through any hub. At the end: every run ended; every client's copy equals the
 * run's final log (`/logs/raw`) byte for byte, with one `complete`; `/logs/raw` equals (a completed
 * run) or is a prefix of (a failed or cancelled one) the worker's own file; never two runs of one
 * project alive at once (process level, and the steps' own lock); nothing left running.
 */
export async function runClusterSoak({ seconds, seed, log = () => {} }: { seconds: number; seed: number; log?: (line: string) => void }): Promise<ClusterSoakReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-csoak-'));
  const pipelines = clusterSoakPipelines(dir);
  const report = emptyClusterReport(seconds, seed);
  const started = Date.now();
  const note = (line: string) => {
    const entry = `+${((Date.now() - started) / 1000).toFixed(1)} s ${line}`;
    report.timeline.push(entry);
    log(`  ${entry}`);
  };
  // Two generators: the load's draws must not shift the faults' (and the other way round).
  const faultRng = random(seed);
  const loadRng = random(seed + 1);
  const rejectionsBefore = rejectionCount();
  const cluster: Cluster = await startCluster({ pipelines, hubs: 2, workers: 0, env: ENV });
  const faults = new ClusterFaults(cluster, pipelines, dir, faultRng.next);
  cluster.hubs.forEach((hub, i) => faults.started.push({ name: `hub-first-${i + 1}`, output: hub.output }));
  const watch = new OverlapWatch(dir);
  const runs: SoakRun[] = [];
  const redisRestarts: number[] = [];
  try {
    for (let i = 0; i < 2; i++) await faults.startWorker();
    const docRoots = new Map<number, string>();
    for (let i = 0; i < PROJECTS; i++) {
      const docRoot = fs.mkdtempSync(path.join(dir, 'docs-'));
      const { status, body } = await call(cluster.hubs[i % 2].url, 'POST', '/api/projects', { name: `soak${i}`, doc_root: docRoot, pipeline: 'locked', settings: { llm_model: 'test-model' } });
      if (status !== 201) throw new Error(`project not created: ${JSON.stringify(body)}`);
      docRoots.set(body.id, docRoot);
    }
    const projects = [...docRoots.keys()];
    const pickHub = (not: string) => {
      const urls = cluster.hubs.map((hub) => hub.url);
      const others = urls.filter((url) => url !== not);
      return (others.length > 0 ? others : urls)[Math.floor(Math.random() * (others.length || urls.length))];
    };
    const open = (run: SoakRun) => run.followers.some((follower) => !follower.done);
    const deadline = Date.now() + seconds * 1000;

    const load = async () => {
      while (Date.now() < deadline) {
        const roll = loadRng.next() * 16;
        if (roll < 10) {
          const projectId = loadRng.pick(projects)!;
          if (runs.filter((run) => run.projectId === projectId && open(run)).length < MAX_OPEN_PER_PROJECT) {
            const hub = loadRng.pick(cluster.hubs)!;
            const answer = await call(hub.url, 'POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' }).catch((error: Error) => ({ status: 0, body: error.message }));
            if (answer.status !== 201) {
              report.startsRefused++;
              note(`start refused by ${hub.url}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 120)}`);
            } else {
              const run: SoakRun = { projectId, id: answer.body.id, followers: [], pollers: [] };
              for (let k = loadRng.next() < 0.5 ? 1 : 2; k > 0; k--) run.followers.push(new ClusterFollower(projectId, run.id, pickHub));
              if (loadRng.next() < 0.4) run.pollers.push(new OffsetPoller(projectId, run.id, pickHub));
              for (const follower of run.followers) follower.connect();
              for (const poller of run.pollers) poller.start();
              runs.push(run);
            }
          }
        } else if (roll < 15) {
          loadRng.pick(runs.flatMap((run) => run.followers).filter((follower) => !follower.done))?.drop();
        } else {
          const run = loadRng.pick(runs.filter(open));
          if (run) {
            const answer = await call(pickHub(''), 'DELETE', `/api/projects/${run.projectId}/runs/${run.id}`).catch(() => ({ status: 0 }));
            if (answer.status === 202) report.cancels++;
          }
        }
        await sleep(150 + loadRng.next() * 350);
      }
    };
    const chaos = async () => {
      await sleep(2000);
      while (Date.now() < deadline) {
        const kind: FaultKind = faultRng.pick(FAULT_KINDS)!;
        note(`fault: ${kind}`);
        // (when it begins: readers may be told of the reset before the restart is over)
        if (kind.startsWith('Redis restarted')) redisRestarts.push(Date.now());
        try {
          const detail = await faults.inject(kind);
          report.faults[kind]++;
          note(`  over: ${kind} (${detail})`);
        } catch (error) {
          report.faultFailures.push(`${kind}: ${(error as Error).message.slice(0, 400)}`);
          note(`  failed: ${kind}: ${(error as Error).message.slice(0, 200)}`);
        }
        await sleep(2000 + faultRng.next() * 4000);
      }
    };
    await Promise.all([load(), chaos()]);

    // Calm: every run ends, every client reads to `complete`.
    log('cluster soak: chaos over; waiting for runs and clients to finish');
    const listed = new Map<number, { projectId: number; id: number; status: string; log_size: number; error_message: string | null; finished_at: string | null }>();
    await waitFor(async () => {
      for (const projectId of projects) {
        const { status, body } = await call(pickHub(''), 'GET', `/api/projects/${projectId}/runs?limit=500`);
        if (status !== 200) return false;
        for (const run of body) listed.set(run.id, { ...run, projectId });
      }
      return [...listed.values()].every((run) => TERMINAL.has(run.status));
    }, 'every run to end', 120_000, 500).catch((error: Error) => report.mismatches.push(`${error.message}: ${[...listed.values()].filter((run) => !TERMINAL.has(run.status)).map((run) => `run ${run.id} ${run.status}`).join(', ')}`));
    const clients = () => runs.flatMap((run) => [...run.followers, ...run.pollers]);
    await waitFor(() => clients().every((client) => client.done), 'every client to get complete', 60_000, 250).catch(() => {});
    for (const client of clients()) client.stop();

    // Every run's final log against the worker's own file and every client's copy.
    for (const run of [...listed.values()].sort((a, b) => a.id - b.id)) {
      report.outcomes[run.status] = (report.outcomes[run.status] ?? 0) + 1;
      let raw: Buffer;
      try {
        raw = await waitFor(() => rawLog(pickHub(''), run.projectId, run.id), `run ${run.id}'s raw log`, 20_000, 250);
      } catch (error) {
        const doubleFault = lostToDoubleFault(faults, run.projectId, run.id, (error as Error).message);
        if (doubleFault) report.lostToDoubleFaults.push(`run ${run.id} (${run.status}): ${doubleFault}`);
        else report.mismatches.push(`run ${run.id}: ${(error as Error).message}`);
        continue;
      }
      if (raw.length !== run.log_size) report.mismatches.push(`run ${run.id} (${run.status}: ${run.error_message ?? ''}, ended ${run.finished_at}): /logs/raw has ${raw.length} bytes, log_size says ${run.log_size}`);
      const files = faults.allWorkerDirs.map((workerDir) => path.join(workerDir, 'logs', String(run.projectId), `${run.id}.log`)).filter((file) => fs.existsSync(file));
      if (files.length > 1) report.mismatches.push(`run ${run.id}: a log file on ${files.length} workers`);
      if (files.length === 1) {
        report.rawFiles++;
        const file = fs.readFileSync(files[0]);
        const ok = run.status === 'completed' ? file.equals(raw) : file.subarray(0, raw.length).equals(raw);
        if (!ok) report.mismatches.push(`run ${run.id} (${run.status}): /logs/raw (${raw.length} bytes) is not ${run.status === 'completed' ? 'equal to' : 'a prefix of'} the worker's file (${file.length} bytes)`);
      } else if (raw.length > 0) report.mismatches.push(`run ${run.id} (${run.status}): ${raw.length} bytes and no worker has its file`);
      const soakRun = runs.find((r) => r.id === run.id);
      for (const [index, client] of [...(soakRun?.followers ?? []), ...(soakRun?.pollers ?? [])].entries()) {
        const label = `run ${run.id} (${run.status}) ${client instanceof ClusterFollower ? 'follower' : 'poller'} ${index}`;
        if (client.errors.length > 0) report.mismatches.push(`${label}: ${client.errors.slice(0, 3).join('; ')}`);
        if (client.final === null) {
          report.mismatches.push(`${label}: never got complete (at ${client instanceof ClusterFollower ? client.next : client.offset} of ${raw.length})`);
          continue;
        }
        const { same, at } = sameAsLog(client.copy(), raw);
        report.bytesCompared += client.copy().length;
        if (!same || client.final !== raw.length) report.mismatches.push(`${label}: copy of ${client.copy().length} bytes differs from /logs/raw's ${raw.length} at byte ${at} (complete at ${client.final})`);
        // A reset only where the protocol says: the stream started over (Redis restarted).
        for (const reset of client.resets) if (!redisRestarts.some((at) => at <= reset && reset - at < 60_000)) report.mismatches.push(`${label}: a reset (${client instanceof ClusterFollower ? 'log_reset' : 'a page at 0'}) with no Redis restart before it`);
      }
    }
    const followers = runs.flatMap((run) => run.followers);
    const pollers = runs.flatMap((run) => run.pollers);
    report.runs = listed.size;
    report.followers = followers.length;
    report.pollers = pollers.length;
    report.resumes = followers.reduce((sum, follower) => sum + follower.resumes, 0);
    report.resets = followers.reduce((sum, follower) => sum + follower.resets.length, 0);
    report.refusals = followers.reduce((sum, follower) => sum + follower.refusals, 0);
    report.pollFailures = pollers.reduce((sum, poller) => sum + poller.failures, 0);
    report.pollResets = pollers.reduce((sum, poller) => sum + poller.resets.length, 0);

    // Never two runs of one project at once: the process samples, and the steps' own lock.
    await waitFor(() => aliveRuns(dir).size === 0, 'no step process left', 15_000, 250).catch(() => {
      report.mismatches.push(`step processes left after every run ended: ${[...aliveRuns(dir)].map(([root, ids]) => `${root}: runs ${[...ids].join(', ')}`).join('; ')}`);
    });
    watch.stop();
    report.overlapSamples = watch.samples;
    report.overlaps = watch.overlaps.length;
    if (watch.overlaps.length > 0) report.mismatches.push(`${watch.overlaps.length} samples saw two runs of a project alive, e.g. ${watch.overlaps.slice(0, 3).join('; ')}`);
    for (const docRoot of docRoots.values()) {
      const violations = path.join(docRoot, 'violations');
      if (fs.existsSync(violations)) report.mismatches.push(`a step found the lock held by a live step: ${fs.readFileSync(violations, 'utf8').trim().split('\n').join('; ')}`);
    }
  } finally {
    watch.stop();
    faults.thawAll();
    await cluster.stop();
    await waitFor(() => markedProcesses(dir).length === 0, 'nothing of the soak left', 10_000, 250).catch(() => {
      const left = markedProcesses(dir);
      report.leftoverProcesses = left.length;
      report.mismatches.push(`${left.length} processes left after the cluster stopped: ${left.map((pid) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').slice(0, 100); } catch { return String(pid); } }).join('; ')}`);
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    });
  }
  report.startFailures.push(...faults.startFailures);
  const rejected = rejectionsSince(rejectionsBefore);
  if (rejected) report.mismatches.push(`unhandled rejections: ${rejected.message.slice(0, 500)}`);
  if (report.mismatches.length === 0) {
    for (const workerDir of faults.allWorkerDirs) fs.rmSync(workerDir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  } else {
    // Evidence: each part's own account (a worker's log says why a run went unarchived) and the workers' folders.
    for (const part of faults.started) fs.writeFileSync(path.join(dir, `${part.name}.log`), part.output());
    fs.writeFileSync(path.join(dir, 'worker-folders.txt'), faults.allWorkerDirs.join('\n') + '\n');
    log(`cluster soak: files kept in ${dir}, with each part's output and its workers' folders`);
  }
  return report;
}

/**
 * Why a finished run's log is on no store, if two faults explain it: its only file was on a machine
 * since lost, and Redis was restarted empty soon after (before a hub could give the run up and archive
 * its stream). Null for anything else (a mismatch).
 */
function lostToDoubleFault(faults: ClusterFaults, projectId: number, runId: number, failure: string): string | null {
  if (!/answered 503/.test(failure)) return null;
  const holders = faults.allWorkerDirs.filter((workerDir) => fs.existsSync(path.join(workerDir, 'logs', String(projectId), `${runId}.log`)));
  const lostAt = holders.length === 1 ? faults.lostMachines.get(holders[0]) : undefined;
  if (lostAt === undefined) return null;
  // A hub gives a lost worker's run up one lease (5 s) after the loss and archives its stream at once;
  // 20 s leaves room for a frozen database on the way. Later than that, the hubs should have had it.
  const emptied = faults.redisEmptied.find((at) => at >= lostAt && at - lostAt < 20_000);
  return emptied === undefined ? null : `its machine was lost, and Redis restarted empty ${((emptied - lostAt) / 1000).toFixed(1)} s later`;
}
