import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import WebSocket from 'ws';
import { createProject, startHub, waitFor, type TestHub } from '../helpers/hub.js';
import { cases } from '../http/badInputCases.js';
import { findProcessesWithEnv } from '../../pipeline-runner/processes.js';
import { checkFollowers } from './followerChecks.js';
import { Follower } from './follower.js';
import { HealthProbe, startControlServer } from './healthProbe.js';
import { searchOnce } from './logSearches.js';
import { outcomeSaid } from './outcomes.js';
import { Removals } from './removals.js';
import { emptyReport, summarise, type SoakReport } from './report.js';
import { checkServerEnd } from './serverExits.js';
import { fdCount, fdTargets, rssMb } from './serverFigures.js';
import { SlowClients } from './slowClients.js';
import { soakPipelines } from './steps.js';
import { checkDeliveries, createWebhooks, readDeliveries, type RunSeen } from './webhookDeliveries.js';
import { RECEIVER_KINDS, WebhookReceiver } from './webhookReceivers.js';

export { summarise, type SoakReport };

const ENV = { HUB_MAX_LINE_BYTES: '1024', HUB_CANCEL_GRACE_MS: '1000', HUB_RUNS_PER_MINUTE: '100000', HUB_DEMO: '0', HUB_WEBHOOK_RETRY_MS: '100', HUB_WEBHOOK_TRIES: '20', HUB_WEBHOOK_RETRY_MAX_MS: '10000', HUB_WS_HIGH_WATER_BYTES: String(256 * 1024) };
// (a small high-water mark: slow readers of the larger logs are paused by the server, and some are when their run is removed)
/**
 * What the hub may add to /api/health's p99 over a trivial server probed beside it (the machine's
 * own delay). Quiet runs here add 40–95 ms; a CI run on a busier machine added 145 (182.5 against
 * 37.3): a loaded machine stretches the hub's tasks, not the trivial server's, which has none.
 * A stall that matters (a blocking read, a runaway regex) is far past this.
 */
const HEALTH_P99_MS = 200;
/**
 * The server's memory beyond what it holds by design at a peak: its WebSockets' send buffers (each up
 * to HUB_WS_HIGH_WATER_BYTES) and the regex threads of the searches under way (the soak runs three
 * at once; a thread with its 1 MiB window measured 12-13 MB of RSS each).
 */
const RSS_BASE_MB = 200;
const REGEX_THREADS_MB = 3 * 13;

/** Open WebSocket connections, as the hub counts them. */
async function webSocketsOpen(hub: TestHub): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  return Number(/^hub_websocket_connections (\d+)/m.exec(text)?.[1] ?? 0);
}

/** After the chaos: how long webhook deliveries may take to drain (a lapsed lease is swept every 30 s). */
const DRAIN_MS = 150_000;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** A server that answers no health probe for this long is stuck: reported, and killed so the soak goes on. */
const STUCK_MS = 20_000;

/** A seeded generator, so a failing soak can be run again the same way (`--seed`). */
function random(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return { next, pick: <T>(items: T[]): T | undefined => items[Math.floor(next() * items.length)] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs runs under chaos for `seconds` (server SIGKILL/SIGTERM and restart, runner SIGKILL, cancels,
 * damaged state files, dropped and resumed WebSocket and SSE clients, bad input, purges and
 * retention of followed runs, searches of pathological logs, slow clients, webhook receivers that
 * fail, stall or vanish), then checks every client's copy against the log file, every run's end,
 * every follower of a removed run told, every webhook event delivered under one id, `/api/health`
 * fast throughout, the server never dead by itself, and nothing left.
 */
export async function runSoak({ seconds, seed, log = () => {} }: { seconds: number; seed: number; log?: (line: string) => void }): Promise<SoakReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-soak-'));
  const pipelines = soakPipelines(dir);
  const rng = random(seed);
  const report = emptyReport(seconds);
  // Each receiver its own generator: they draw as requests come, which must not shift the chaos's draws.
  const receivers = RECEIVER_KINDS.map((kind, index) => new WebhookReceiver(kind, `secret-${kind}-${seed}`, random(seed + index + 1).next));
  for (const receiver of receivers) await receiver.listen();
  let hub: TestHub = await startHub({ dir, pipelines, env: ENV });
  let restarting = false;
  const probe = new HealthProbe(() => hub.url, () => restarting);
  probe.start();
  const control = await startControlServer();
  process.once('exit', control.stop); // a soak that throws leaves no process behind
  const controlProbe = new HealthProbe(() => control.url, () => false);
  controlProbe.start();
  // The watchdog: a stuck server's requests never end; killing it ends them (and the loop restarts it).
  let watchdogKills = 0;
  const watchdog = setInterval(() => {
    if (restarting || !up() || Date.now() - probe.lastAnswerAt < STUCK_MS) return;
    report.mismatches.push(`the server answered nothing for ${STUCK_MS / 1000} s (event loop blocked?); killed: ${hub.output().slice(-600)}`);
    watchdogKills++;
    hub.process.kill('SIGKILL');
  }, 1000);
  const [chatty, chatty2, stubborn, pathological, retained] = [await createProject(hub, 'chatty'), await createProject(hub, 'chatty'), await createProject(hub, 'stubborn'), await createProject(hub, 'pathological'), await createProject(hub, 'chatty')];
  const projects = [chatty, chatty2, stubborn, pathological, retained];
  // Retention set per project: removed while clients may follow them.
  for (const [projectId, runs] of [[pathological, 6], [retained, 2]]) await hub.api('PATCH', `/api/projects/${projectId}`, { retention: { runs } });
  const webhooks = await createWebhooks(hub, projects, receivers);
  const vanishing = receivers.find((receiver) => receiver.kind === 'vanishing')!;
  let vanished: Promise<void> | null = null;
  const runs: { projectId: number; id: number }[] = [];
  const seen = new Map<number, RunSeen>();
  const followers: Follower[] = [];
  const removals = new Removals(path.join(dir, 'snapshots'));
  const slow = new SlowClients();
  const stateFile = (run: { projectId: number; id: number }) => path.join(dir, 'logs', String(run.projectId), `${run.id}.json`);
  const logFile = (run: { projectId: number; id: number }) => path.join(dir, 'logs', String(run.projectId), `${run.id}.log`);
  const up = () => hub.process.exitCode === null && hub.process.signalCode === null;
  const restart = async (signal: NodeJS.Signals | null) => {
    restarting = true;
    for (const follower of followers) follower.drop();
    if (signal) await hub.stop(signal);
    const killedByWatchdog = signal === null && watchdogKills > 0 && hub.process.signalCode === 'SIGKILL';
    if (killedByWatchdog) watchdogKills--;
    report.mismatches.push(...checkServerEnd(hub.process, hub.output(), killedByWatchdog ? 'SIGKILL' : signal));
    hub = await startHub({ dir, pipelines, env: ENV });
    restarting = false;
  };
  /** The newest runs of each project (and what the soak saw of every run, kept in `seen`). */
  const listRuns = async () => {
    const listed: RunSeen[] = [];
    for (const projectId of projects) {
      for (const run of (await hub.api('GET', `/api/projects/${projectId}/runs?limit=20`)).body as RunSeen[]) {
        listed.push({ projectId, id: run.id, status: run.status, started_at: run.started_at });
        seen.set(run.id, listed.at(-1)!);
      }
    }
    return listed.filter((run) => !removals.removals.has(run.id));
  };
  const activeRuns = async () => (await listRuns()).filter((run) => run.status === 'running' || run.status === 'pending');

  const actions: [weight: number, name: string, act: () => Promise<void>][] = [
    [30, 'start', async () => {
      const projectId = rng.next() < 0.08 ? pathological : rng.pick([chatty, chatty2, stubborn, retained])!;
      const scope = projectId === chatty || projectId === chatty2 || projectId === retained ? (rng.next() < 0.8 ? 'all' : 'second') : 'all';
      const { status, body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope, if_busy: 'queue' });
      if (status !== 201) throw new Error(`start answered ${status}: ${JSON.stringify(body)}`);
      runs.push({ projectId, id: body.id });
      report.runs++;
      const follower = new Follower(projectId, body.id, rng.next() < 0.6 ? 'ws' : 'sse', rng.next() < 0.2 ? Math.floor(rng.next() * 50) : null, rng.next() < 0.3);
      followers.push(follower);
      follower.connect(hub.url);
    }],
    [25, 'drop and resume a client', async () => {
      // (not the slow followers added at a purge: they are watched until told)
      const follower = rng.pick(followers.filter((f) => !f.done && !f.abandoned && f.slowUntil === 0));
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
    [4, 'purge a run while clients follow it', async () => {
      const finished = (await listRuns()).filter((run) => TERMINAL.has(run.status));
      // Mostly the large logs: slow followers of those are still reading when the run goes.
      const size = (run: RunSeen) => fs.statSync(logFile(run), { throwIfNoEntry: false })?.size ?? 0;
      const run = rng.next() < 0.8 ? rng.pick(finished.filter((r) => r.projectId === pathological && size(r) > 8e6)) ?? rng.pick(finished) : rng.pick(finished);
      if (run && (await removals.purge(hub, run, logFile(run), followers))) report.purges++;
    }],
    [6, 'search logs, three at once', async () => {
      const candidates = await listRuns();
      const picked = [rng.pick(candidates.filter((r) => r.projectId === pathological)), rng.pick(candidates), rng.pick(candidates)].filter((run) => run !== undefined);
      const found = await Promise.all(picked.map((run) => searchOnce(hub, run, logFile(run), rng.next, report.searches)));
      report.mismatches.push(...found.flat());
    }],
    [3, 'a slow client', async () => {
      slow.start(hub.url, rng.pick(projects)!, rng.next() < 0.6 ? 'body' : 'headers', rng.next() < 0.3 ? 0 : 1000);
    }],
    [1, 'a webhook receiver vanishes', async () => {
      if (vanished) return;
      report.webhooks.vanishes++;
      await vanishing.vanish();
      // Back after a while (bounded, so its deliveries can still succeed within the retries).
      vanished = sleep(Math.min(20_000, seconds * 150)).then(() => vanishing.comeBack()).catch((error: unknown) => {
        report.mismatches.push(`the vanished webhook receiver could not come back: ${(error as Error).message}`);
      }).finally(() => (vanished = null));
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
    if (!up()) await restart(null);
    const rss = rssMb(hub.process.pid!);
    if (rss > report.maxRssMb) {
      report.maxRssMb = rss;
      // What the hub may hold by design at this peak: each WebSocket's send buffer up to its high-water mark.
      if (rss > RSS_BASE_MB) report.socketsAtMaxRss = await webSocketsOpen(hub).catch(() => report.socketsAtMaxRss);
    }
    await sleep(50 + rng.next() * 250);
  }

  // Calm: every run ends, every client reconnects and reads to `complete` (or is told its run went).
  log('soak: chaos over; waiting for runs, clients and webhook deliveries to finish');
  slow.closeAll();
  report.slowClients = slow.figures;
  await vanished;
  const ensureUp = async () => {
    if (!up()) await restart(null);
  };
  await waitFor(async () => (await ensureUp(), await activeRuns()).length === 0, 'every run to end', 120_000, 250);
  await waitFor(async () => {
    await ensureUp();
    for (const follower of followers) if (!follower.abandoned) follower.connect(hub.url);
    return followers.every((follower) => follower.done || follower.errors.length > 0 || follower.abandoned);
  }, 'every client to get complete', 60_000, 500).catch(() => {});
  await removals.settle();
  for (const follower of followers) follower.drop();
  report.mismatches.push(...removals.mismatches);
  for (const run of runs) {
    const { status, body } = await waitFor(async () => (await ensureUp(), await hub.api('GET', `/api/projects/${run.projectId}/runs/${run.id}`)), `run ${run.id}'s record`, 60_000, 500);
    if (status === 404) removals.noteRetention(run.projectId, run.id);
    else seen.set(run.id, { projectId: run.projectId, id: run.id, status: body.status, started_at: body.started_at });
  }

  checkFollowers(followers, removals, logFile, report);

  // Every run that is still there ended as its runner said.
  for (const run of runs.filter((r) => !removals.removals.has(r.id))) {
    const status = seen.get(run.id)!.status;
    report.outcomes[status] = (report.outcomes[status] ?? 0) + 1;
    const said = outcomeSaid(stateFile(run), logFile(run));
    if (status !== said) report.mismatches.push(`run ${run.id}: recorded ${status}, runner said ${said ?? 'nothing'}`);
  }

  // Every webhook event delivered, under one id each (retries of failed, stalled and refused tries drain).
  const databaseFile = path.join(dir, 'data', 'hub.sqlite');
  const deliveries = async () => checkDeliveries(webhooks, [...seen.values()], await readDeliveries(databaseFile));
  await waitFor(async () => {
    await ensureUp();
    const { delivered, expected } = await deliveries();
    return delivered === expected;
  }, 'every webhook event to be delivered', DRAIN_MS, 1000).catch(() => {});
  const delivered = await deliveries();
  report.webhooks = { ...report.webhooks, expected: delivered.expected, delivered: delivered.delivered, repeats: delivered.repeats, posts: receivers.reduce((sum, receiver) => sum + receiver.received.length, 0) };
  report.mismatches.push(...delivered.mismatches);

  // Nothing of any run is left running; the server's handles are back to idle; memory bounded.
  const db = new sqlite3.Database(databaseFile, sqlite3.OPEN_READONLY);
  const tokens = await new Promise<string[]>((resolve, reject) => db.all('SELECT runner_token FROM runs WHERE runner_token IS NOT NULL', (error, rows: { runner_token: string }[]) => (error ? reject(error) : resolve(rows.map((row) => row.runner_token)))));
  db.close();
  report.leftoverProcesses = tokens.reduce((sum, token) => sum + findProcessesWithEnv('HUB_RUN_TOKEN', token).length, 0);
  await probe.stop();
  await controlProbe.stop();
  control.stop();
  clearInterval(watchdog);
  report.health = { ...probe.figures(), down: probe.down, controlP99: controlProbe.figures().p99 };
  if (report.health.p99 >= report.health.controlP99 + HEALTH_P99_MS) report.mismatches.push(`/api/health p99 ${report.health.p99.toFixed(1)} ms (max ${report.health.max.toFixed(1)} ms) over ${report.health.samples} answers, a trivial server's beside it ${report.health.controlP99.toFixed(1)} ms`);
  if (probe.failures.length > 0) report.mismatches.push(`${probe.failures.length} health probes failed while the server was up, e.g. ${probe.failures.slice(0, 3).join('; ')}`);
  // The server that lived through the end, with every client gone, against a fresh one at rest.
  await sleep(1000);
  report.fdsEnd = fdCount(hub.process.pid!);
  report.rssEndMb = rssMb(hub.process.pid!); // after the drain, idle: what a leak would leave
  const endTargets = fdTargets(hub.process.pid!);
  await restart('SIGTERM');
  await sleep(1000);
  report.fdsIdle = fdCount(hub.process.pid!);
  if (report.fdsEnd > report.fdsIdle) report.mismatches.push(`the server held ${report.fdsEnd} handles at the end, ${report.fdsIdle} when idle: ${endTargets.filter((t) => t.startsWith('/')).join(' ')} / ${fdTargets(hub.process.pid!).filter((t) => t.startsWith('/')).join(' ')}`);
  const rssBound = RSS_BASE_MB + REGEX_THREADS_MB + (report.socketsAtMaxRss * Number(ENV.HUB_WS_HIGH_WATER_BYTES)) / 2 ** 20;
  if (report.maxRssMb >= rssBound) report.mismatches.push(`server RSS reached ${report.maxRssMb.toFixed(0)} MB (bound ${rssBound.toFixed(0)} MB: ${RSS_BASE_MB} MB + ${REGEX_THREADS_MB} MB of regex threads + ${report.socketsAtMaxRss} WebSockets × their high-water mark)`);
  if (report.rssEndMb >= RSS_BASE_MB) report.mismatches.push(`server RSS ${report.rssEndMb.toFixed(0)} MB at the end, idle`);
  if (report.leftoverProcesses > 0) report.mismatches.push(`${report.leftoverProcesses} processes of finished runs are still running`);
  await hub.stop();
  report.mismatches.push(...checkServerEnd(hub.process, hub.output(), 'SIGTERM'));
  for (const receiver of receivers) await receiver.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return report;
}
