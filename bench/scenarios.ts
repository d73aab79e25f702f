import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type WebSocket from 'ws';
import type { TestHub } from '../test/helpers/hub.js';
import { waitFor, waitForRun } from '../test/helpers/hub.js';
import type { Collector } from './collector.js';
import { Histogram } from './histogram.js';
import { EVERY_LINE_ONE_IN, connectClients, createBenchProject, createShellProject, follow, runBaseline, serverCpuSeconds, serverRss, writerScript } from './harness.js';
import { LINE_BYTES } from './lineFormat.js';
import { medianOfRounds, percentile, summarize, type Summary } from './stats.js';

export interface Result {
  scenario: string;
  hub: string;
  baseline: string;
  ratio?: number;
  target?: string;
  met?: boolean;
  lost: number;
  duplicated: number;
  data: Record<string, unknown>;
}

export const ms = (s: Summary) => `p50 ${s.p50.toFixed(1)} / p99 ${s.p99.toFixed(1)} / max ${s.max.toFixed(0)} ms`;
export const closeAll = (sockets: WebSocket[]) => sockets.forEach((socket) => socket.terminate());

export function correctness(collectors: Collector[], count: number) {
  return {
    lost: collectors.reduce((sum, c) => sum + c.lost(count), 0),
    duplicated: collectors.reduce((sum, c) => sum + c.duplicated, 0),
  };
}

/**
 * A run writing `count` lines at `rate`, followed by `subscribers` clients whose latencies go into
 * `histogram`; returns their collectors.
 */
export async function followRun(hub: TestHub, subscribers: number, count: number, rate: number, histogram: Histogram, onTick?: () => void, skipBelow = Math.ceil(rate * 0.2)) {
  const projectId = await createBenchProject(hub, count, rate);
  const sockets = await connectClients(hub, subscribers);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const clients = sockets.map((socket, index) => follow(socket, body.id, histogram, skipBelow, index % EVERY_LINE_ONE_IN === 0));
  const ticker = onTick ? setInterval(onTick, 500) : undefined;
  await Promise.race([Promise.all(clients.map((c) => c.completed)), new Promise((resolve) => setTimeout(resolve, 60_000))]);
  clearInterval(ticker);
  closeAll(sockets);
  return clients.map((c) => c.collector);
}

/**
 * The hub and the bare baseline under the same load, in alternating rounds of `seconds` each after
 * one unmeasured second of each: measuring starts with optimised code in the servers and the
 * clients (a fresh process's first second says more about the JIT than about the hub), and a bad
 * second of this shared machine does not land on one side only. p50 and p99 are the median round's.
 */
async function hubAgainstBaseline(hub: TestHub, subscribers: number, rate: number, seconds: number, rounds: number) {
  await followRun(hub, subscribers, rate, rate, new Histogram());
  await runBaseline(subscribers, rate, rate, hub.dir, new Histogram());
  const count = rate * seconds;
  const hubRounds: Summary[] = [];
  const baseRounds: Summary[] = [];
  let rss = 0;
  let hubErrors = { lost: 0, duplicated: 0 };
  let baselineLost = 0;
  for (let round = 0; round < rounds; round++) {
    const hubLatency = new Histogram();
    const collectors = await followRun(hub, subscribers, count, rate, hubLatency, () => (rss = Math.max(rss, serverRss(hub))));
    const errors = correctness(collectors, count);
    hubErrors = { lost: hubErrors.lost + errors.lost, duplicated: hubErrors.duplicated + errors.duplicated };
    hubRounds.push(hubLatency.summary());
    const baseLatency = new Histogram();
    baselineLost += correctness(await runBaseline(subscribers, count, rate, hub.dir, baseLatency, Math.ceil(rate * 0.2)), count).lost;
    baseRounds.push(baseLatency.summary());
  }
  return { h: medianOfRounds(hubRounds), b: medianOfRounds(baseRounds), rss, ...hubErrors, baselineLost, hubRounds, baseRounds };
}

export async function latency(hub: TestHub, rate: number, subscribers: number, seconds: number, rounds: number): Promise<Result> {
  const { h, b, lost, duplicated, baselineLost, hubRounds, baseRounds } = await hubAgainstBaseline(hub, subscribers, rate, seconds, rounds);
  const targeted = rate >= 10_000 && subscribers >= 100;
  return {
    scenario: `latency ${rate}/s × ${subscribers} sub`,
    hub: ms(h),
    baseline: ms(b),
    ratio: h.p99 / b.p99,
    target: targeted ? 'p99 ≤ 2× baseline' : undefined,
    met: targeted ? h.p99 <= 2 * b.p99 : undefined,
    lost,
    duplicated,
    data: { hub: h, baseline: b, baselineLost, seconds, hubRounds, baseRounds },
  };
}

export async function fanOut(hub: TestHub, subscribers: number, rate: number, seconds: number, rounds: number): Promise<Result> {
  const { h, b, rss, lost, duplicated, baselineLost, hubRounds, baseRounds } = await hubAgainstBaseline(hub, subscribers, rate, seconds, rounds);
  return {
    scenario: `fan-out ${rate}/s × ${subscribers} sub`,
    hub: `${ms(h)}; RSS ≤ ${rss.toFixed(0)} MB`,
    baseline: ms(b),
    ratio: h.p99 / b.p99,
    target: 'p99 ≤ 2× baseline',
    met: h.p99 <= 2 * b.p99,
    lost,
    duplicated,
    data: { hub: h, baseline: b, serverRssMb: rss, baselineLost, seconds, hubRounds, baseRounds },
  };
}

export async function throughput(hub: TestHub, count: number): Promise<Result> {
  const projectId = await createBenchProject(hub, count, 0);
  const [socket] = await connectClients(hub, 1);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const client = follow(socket, body.id, null);
  await client.completed;
  // From the first line to the last at the client: the runner's and writer's start-up left out.
  const seconds = (client.collector.lastAt - client.collector.firstAt) / 1000;
  closeAll([socket]);
  const devNull = performance.now();
  await new Promise((resolve) => spawn(process.execPath, [writerScript, String(count), '0', '/dev/null'], { stdio: 'ignore' }).once('exit', resolve));
  const startup = performance.now();
  await new Promise((resolve) => spawn(process.execPath, [writerScript, '0', '0', '/dev/null'], { stdio: 'ignore' }).once('exit', resolve));
  // The writer's own time for these bytes, its Node start-up (measured alone) taken out.
  const baselineSeconds = (startup - devNull - (performance.now() - startup)) / 1000;
  const rate = count / seconds;
  return {
    scenario: `throughput ${count.toLocaleString('en')} lines → 1 sub`,
    hub: `${Math.round(rate).toLocaleString('en')} lines/s, ${((rate * 100) / 1e6).toFixed(0)} MB/s`,
    baseline: `${Math.round(count / baselineSeconds).toLocaleString('en')} lines/s to /dev/null`,
    ratio: baselineSeconds / seconds,
    target: '≥ 1 000 000 lines/s',
    met: rate >= 1_000_000,
    ...correctness([client.collector], count),
    data: { seconds, baselineSeconds, linesPerSecond: rate },
  };
}

/**
 * What line times cost: one run of `count` lines followed live by `subscribers` clients, then
 * another followed by as many asking for timestamps, the server's CPU and the wall time of each.
 * Only subscribers that ask pay: their frames get a `times` array, looked up per batch.
 */
export async function timestampsCost(hub: TestHub, subscribers: number, count: number): Promise<Result> {
  const followRun = async (timestamps: boolean) => {
    const projectId = await createBenchProject(hub, count, 0);
    const sockets = await connectClients(hub, subscribers);
    const cpu = serverCpuSeconds(hub);
    const started = performance.now();
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const followers = sockets.map((socket) => follow(socket, body.id, null, 0, true, timestamps));
    await Promise.all(followers.map((f) => f.completed));
    const seconds = (performance.now() - started) / 1000;
    closeAll(sockets);
    return { seconds, serverCpu: serverCpuSeconds(hub) - cpu, collectors: followers.map((f) => f.collector) };
  };
  const plain = await followRun(false);
  const timed = await followRun(true);
  const text = (r: { seconds: number; serverCpu: number }) => `${r.seconds.toFixed(2)} s, server CPU ${r.serverCpu.toFixed(2)} s`;
  return {
    scenario: `timestamps: ${count.toLocaleString('en')} lines → ${subscribers} sub asking for times`,
    hub: text(timed),
    baseline: `the same without: ${text(plain)}`,
    ratio: timed.serverCpu / plain.serverCpu,
    ...correctness([...plain.collectors, ...timed.collectors], count),
    data: { plain: { seconds: plain.seconds, serverCpu: plain.serverCpu }, timed: { seconds: timed.seconds, serverCpu: timed.serverCpu } },
  };
}

/**
 * Late subscribers: `clients` clients subscribe from offset 0 at once to a finished run of `count`
 * lines (a reconnect wave, or a team opening the same log), against one client alone on the same log.
 */
export async function catchUp(hub: TestHub, clients: number, count: number): Promise<Result> {
  const projectId = await createBenchProject(hub, count, 0);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, body.id, ['completed'], 120_000);
  const readAll = async (n: number) => {
    const sockets = await connectClients(hub, n);
    const cpu = serverCpuSeconds(hub);
    const started = performance.now();
    const followers = sockets.map((socket, index) => follow(socket, body.id, null, 0, index % EVERY_LINE_ONE_IN === 0));
    await Promise.all(followers.map((f) => f.completed));
    const seconds = (performance.now() - started) / 1000;
    closeAll(sockets);
    return { seconds, serverCpu: serverCpuSeconds(hub) - cpu, collectors: followers.map((f) => f.collector) };
  };
  const alone = await readAll(1);
  const all = await readAll(clients);
  const mb = (count * LINE_BYTES) / 1e6;
  const text = (r: { seconds: number; serverCpu: number }, n: number) => `${r.seconds.toFixed(2)} s, ${((n * mb) / r.seconds).toFixed(0)} MB/s in all, server CPU ${r.serverCpu.toFixed(1)} s`;
  return {
    scenario: `catch-up: ${clients} sub from offset 0 of a finished ${mb.toFixed(0)} MB log`,
    hub: text(all, clients),
    baseline: `1 sub alone: ${text(alone, 1)}`,
    // the time per client's copy, against one client alone
    ratio: all.seconds / clients / alone.seconds,
    ...correctness([...alone.collectors, ...all.collectors], count),
    data: { alone: { seconds: alone.seconds, serverCpu: alone.serverCpu }, all: { seconds: all.seconds, serverCpu: all.serverCpu } },
  };
}

/**
 * Many runs at once. Starting them is a burst: child_process.spawn is synchronous, so each runner
 * start blocks the event loop (36 ms idle, ~100 ms loaded, on this machine). Latency is counted
 * after the first `warmup` seconds of each run; the burst is reported apart (max over all lines).
 */
export async function manyRuns(hub: TestHub, runs: number, rate: number, seconds: number, warmup: number): Promise<Result> {
  const count = rate * seconds;
  const latencies = new Histogram();
  const all = await Promise.all(Array.from({ length: runs }, () => followRun(hub, 2, count, rate, latencies, undefined, rate * warmup)));
  const collectors = all.flat();
  const h = latencies.summary();
  return {
    scenario: `${runs} runs × ${rate}/s × 2 sub (after ${warmup} s start-up)`,
    hub: ms(h),
    baseline: '–',
    ...correctness(collectors, count),
    data: { hub: h },
  };
}

/**
 * `runs` runs started at once (one POST each, all in flight together, `sh` steps) while a subscriber
 * follows a run already writing 1000 lines/s: its line latency over the whole burst. Starting a
 * runner forks; where that happens decides whether the burst stalls everyone else's logs.
 */
export async function startBurst(hub: TestHub, runs: number): Promise<Result> {
  const projects: number[] = [];
  for (let i = 0; i < runs; i++) projects.push(await createShellProject(hub));
  const rate = 1000;
  const seconds = 6;
  const latencies = new Histogram();
  const following = followRun(hub, 1, rate * seconds, rate, latencies);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const started = performance.now();
  const answers = await Promise.all(projects.map((id) => hub.api('POST', `/api/projects/${id}/runs`, { scope: 'all' })));
  const burstMs = performance.now() - started;
  const refused = answers.filter((answer) => answer.status !== 201).length;
  const collectors = await following;
  const h = latencies.summary();
  return {
    scenario: `${runs} runs started at once; 1 sub of a run already at ${rate}/s`,
    hub: `${ms(h)}; the ${runs} POSTs answered within ${burstMs.toFixed(0)} ms${refused ? `, ${refused} refused` : ''}`,
    baseline: '–',
    target: 'p99 < 100 ms',
    met: h.p99 < 100 && refused === 0,
    ...correctness(collectors, rate * seconds),
    data: { hub: h, burstMs },
  };
}

export async function bigLog(hub: TestHub, bytes: number) {
  const count = Math.floor(bytes / 100);
  const projectId = await createBenchProject(hub, count, 0);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const run = await waitForRun(hub, projectId, body.id, ['completed', 'failed'], 180_000);
  return { projectId, runId: body.id as number, file: path.join(hub.dir, 'logs', run.log_path), count };
}

export async function tailN(hub: TestHub, log: { projectId: number; runId: number; file: string }): Promise<Result> {
  const times: number[] = [];
  let lines = 0;
  for (let i = 0; i < 60; i++) {
    const started = performance.now();
    const { body } = await hub.api('GET', `/api/projects/${log.projectId}/runs/${log.runId}/logs?tail=1000`);
    if (i >= 10) times.push(performance.now() - started);
    lines = body.lines.length;
  }
  const tailTimes: number[] = [];
  for (let i = 0; i < 25; i++) {
    const started = performance.now();
    await new Promise((resolve) => spawn('tail', ['-n', '1000', log.file], { stdio: ['ignore', 'ignore', 'ignore'] }).once('exit', resolve));
    if (i >= 5) tailTimes.push(performance.now() - started);
  }
  const h = percentile([...times].sort((a, b) => a - b), 50);
  const b = percentile([...tailTimes].sort((a, b) => a - b), 50);
  const size = fs.statSync(log.file).size;
  return {
    scenario: `tail=1000 over HTTP on ${(size / 1024 ** 3).toFixed(2)} GiB`,
    hub: `p50 ${h.toFixed(2)} ms (${lines} lines)`,
    baseline: `coreutils tail -n 1000 spawn p50 ${b.toFixed(2)} ms`,
    ratio: h / b,
    target: 'faster than tail',
    met: h < b && lines === 1000,
    lost: lines === 1000 ? 0 : 1000 - lines,
    duplicated: 0,
    data: { hubP50: h, tailP50: b, bytes: size },
  };
}

export async function memory(hub: TestHub, log: { runId: number; file: string }, clients: number, seconds: number): Promise<Result> {
  const samples: number[] = [serverRss(hub)];
  const slow = (await connectClients(hub, 1))[0];
  (slow as unknown as { _socket: { pause(): void } })._socket.pause();
  slow.send(JSON.stringify({ type: 'subscribe', run_id: log.runId, offset: 0 }));
  const sampler = setInterval(() => samples.push(serverRss(hub)), 1000);
  const collectors = await followRun(hub, clients, 2000 * seconds, 2000, new Histogram());
  clearInterval(sampler);
  slow.terminate();
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  return {
    scenario: `memory: ${(fs.statSync(log.file).size / 1024 ** 3).toFixed(2)} GiB log, ${clients} clients, 1 slow client for ${seconds} s`,
    hub: `RSS ${min.toFixed(0)}–${max.toFixed(0)} MB`,
    baseline: '–',
    target: 'RSS < 200 MB, flat',
    met: max < 200 && max - min < 60,
    ...correctness(collectors, 2000 * seconds),
    data: { samples },
  };
}

/**
 * POST → first line at a subscriber; `shell` uses a `sh` step (no Node start-up in the step).
 * `pauseMs` between runs: a user starts a run on a hub at rest (the warm runner taken by the previous
 * run has been replaced); 0 starts each run as soon as the previous one completed.
 */
export async function runStart(hub: TestHub, runs: number, shell: boolean, pauseMs: number): Promise<Result> {
  const projectId = shell ? await createShellProject(hub) : await createBenchProject(hub, 1, 1000);
  const [socket] = await connectClients(hub, 1);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const started = performance.now();
    const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const client = follow(socket, body.id, null);
    await waitFor(() => client.collector.received > 0, 'the first line', 10_000, 1);
    times.push(performance.now() - started);
    await client.completed;
    socket.removeAllListeners('message');
  }
  closeAll([socket]);
  const s = summarize(times);
  const how = pauseMs > 0 ? `${pauseMs} ms apart` : 'back to back';
  // The target is for a run started on a hub at rest; back to back is shown for what it costs.
  // A `sh` step starts in a few ms, so its target is tighter; a `node` step pays Node's start-up.
  const limit = pauseMs > 0 ? (shell ? 50 : 150) : undefined;
  const target = limit ? `p50 < ${limit} ms` : undefined;
  return { scenario: `run start: POST → first line (${shell ? 'sh' : 'node'} step, ${how})`, hub: ms(s), baseline: '–', target, met: limit ? s.p50 < limit : undefined, lost: 0, duplicated: 0, data: { times: s, pauseMs } };
}

/** Pages through GET …/logs/search until it says complete: the whole log scanned over HTTP. */
async function searchAll(hub: TestHub, log: { projectId: number; runId: number }, query: string): Promise<{ ms: number; matches: number; requests: number }> {
  const started = performance.now();
  let after = 0;
  let matches = 0;
  let requests = 0;
  for (;;) {
    const { body } = await hub.api('GET', `/api/projects/${log.projectId}/runs/${log.runId}/logs/search?${query}&limit=1000&after=${after}`);
    requests++;
    matches += body.matches.length;
    after = body.next_after;
    if (body.complete || body.stopped === 'regex_timeout') break;
  }
  return { ms: performance.now() - started, matches, requests };
}

const grepCount = (args: string[], file: string) =>
  new Promise<number>((resolve) => {
    const started = performance.now();
    spawn('grep', [...args, file], { stdio: ['ignore', 'ignore', 'ignore'] }).once('exit', () => resolve(performance.now() - started));
  });

export async function search(hub: TestHub, log: { projectId: number; runId: number; file: string; count: number }): Promise<Result[]> {
  const size = fs.statSync(log.file).size;
  const last = String(log.count - 1).padStart(10, '0');
  const text = await searchAll(hub, log, `q=${encodeURIComponent(`${last} `)}`);
  const regex = await searchAll(hub, log, `regex=1&q=${encodeURIComponent('^99999\\d{5} ')}`);
  const grepText = await grepCount(['-c', '-F', `${last} `], log.file);
  const grepRegex = await grepCount(['-c', '-E', '^99999[0-9]{5} '], log.file);
  const speed = (ms: number) => `${(size / 1024 ** 2 / (ms / 1000)).toFixed(0)} MiB/s`;
  const gib = (size / 1024 ** 3).toFixed(2);
  return [
    {
      scenario: `search text over the whole ${gib} GiB log over HTTP`,
      hub: `${(text.ms / 1000).toFixed(2)} s (${speed(text.ms)}, ${text.requests} requests, ${text.matches} match)`,
      baseline: `grep -c -F ${(grepText / 1000).toFixed(2)} s (${speed(grepText)})`,
      ratio: text.ms / grepText,
      target: '≤ 2× grep -c -F',
      met: text.ms <= 2 * grepText,
      lost: text.matches === 1 ? 0 : 1,
      duplicated: 0,
      data: { text, grepText, size },
    },
    {
      scenario: `search regex over the whole ${gib} GiB log over HTTP`,
      hub: `${(regex.ms / 1000).toFixed(2)} s (${speed(regex.ms)}, ${regex.requests} requests)`,
      baseline: `grep -c -E ${(grepRegex / 1000).toFixed(2)} s (${speed(grepRegex)})`,
      ratio: regex.ms / grepRegex,
      target: '≤ 4× grep -c -E',
      met: regex.ms <= 4 * grepRegex,
      lost: 0,
      duplicated: 0,
      data: { regex, grepRegex, size },
    },
  ];
}

/** A log of search's worst cases: half one line of `a`, half `a\n` lines. */
export async function pathologicalLog(hub: TestHub, bytes: number) {
  const docRoot = fs.mkdtempSync(path.join(hub.dir, 'docs-'));
  const { body: project } = await hub.api('POST', '/api/projects', { name: `patho-${Math.random()}`, doc_root: docRoot, pipeline: 'pathological', settings: { half: String(Math.floor(bytes / 2)) } });
  const { body } = await hub.api('POST', `/api/projects/${project.id}/runs`, { scope: 'all' });
  const run = await waitForRun(hub, project.id, body.id, ['completed', 'failed'], 300_000);
  return { projectId: project.id as number, runId: body.id as number, file: path.join(hub.dir, 'logs', run.log_path) };
}

/** Ten searches of the worst cases at once, each paged on for `seconds`, while /api/health is asked every 10 ms. */
export async function searchUnderLoad(hub: TestHub, log: { projectId: number; runId: number; file: string }, seconds: number): Promise<Result> {
  const queries = [
    'q=a&limit=2', // the issue's: a match on every byte of a huge line
    'q=a&limit=1000', // then a match on every other byte
    'q=A', // case folded
    'q=b', // no match: the whole log
    `q=${'a'.repeat(500)}b${'a'.repeat(499)}`, // Boyer-Moore's worst case
    'regex=1&q=a*', // matches the empty string
    'regex=1&q=b*',
    'regex=1&q=(?:)',
    'regex=1&q=b', // no match: the whole log in the worker
    'regex=1&q=a%24', // $
  ];
  const until = performance.now() + seconds * 1000;
  let requests = 0;
  const searches = queries.map(async (query) => {
    let after = 0;
    while (performance.now() < until) {
      const { body } = await hub.api('GET', `/api/projects/${log.projectId}/runs/${log.runId}/logs/search?${query}&after=${after}`);
      requests++;
      if (body.complete) after = 0;
      else after = body.next_after;
    }
  });
  const health: number[] = [];
  let done = false;
  const all = Promise.all(searches).finally(() => (done = true));
  while (!done) {
    const started = performance.now();
    await hub.api('GET', '/api/health');
    health.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await all;
  const s = summarize(health);
  return {
    scenario: `/api/health during 10 worst-case searches of a ${(fs.statSync(log.file).size / 1024 ** 3).toFixed(2)} GiB log (${seconds} s)`,
    hub: `${ms(s)} (${health.length} asked; ${requests} search requests)`,
    baseline: '–',
    target: 'p99 < 100 ms',
    met: s.p99 < 100,
    lost: 0,
    duplicated: 0,
    data: { health: s, requests },
  };
}
