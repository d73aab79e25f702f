import type { Writable } from 'node:stream';
import type { Project, Run } from '../server/wire.js';
import { EXIT_CANCELLED, exitCodeOf } from './exitCode.js';
import { describeRun, duration, table } from './format.js';
import { CliError, type HubClient } from './hubClient.js';
import { LogFollower } from './logFollower.js';
import { fetchStampedPage } from './stampedPages.js';

export interface Io {
  stdout: Writable;
  /** status, progress and hints: never mixed into a log on stdout */
  status: (line: string) => void;
  /** stderr is a terminal: show step progress */
  interactive: boolean;
  json: boolean;
}

const printJson = (io: Io, value: unknown) => io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

export async function listProjects(client: HubClient, io: Io): Promise<number> {
  const projects = await client.projects();
  const current = await Promise.all(projects.map((project) => client.currentRun(project.id)));
  if (io.json) {
    printJson(io, projects.map((project, index) => ({ ...project, active_run: current[index] })));
    return 0;
  }
  io.stdout.write(table(['ID', 'NAME', 'PIPELINE', 'ACTIVE RUN'], projects.map((project, index) => {
    const run = current[index];
    return [String(project.id), project.name, project.pipeline, run ? `#${run.id} ${run.status}` : '–'];
  })));
  return 0;
}

export async function showStatus(client: HubClient, io: Io, projectArg: string | undefined): Promise<number> {
  if (projectArg === undefined) {
    const projects = await client.projects();
    const latest = await Promise.all(projects.map(async (project) => (await client.runsOf(project.id, 1))[0] ?? null));
    if (io.json) {
      printJson(io, projects.map((project, index) => ({ project, latest_run: latest[index] })));
      return 0;
    }
    io.stdout.write(table(['PROJECT', 'LATEST RUN', 'STATUS', 'STEP', 'TIME'], projects.map((project, index) => {
      const run = latest[index];
      return run ? [project.name, `#${run.id}`, run.status, run.current_step ?? '–', duration(run)] : [project.name, '–', '–', '–', ''];
    })));
    return 0;
  }
  const project = await client.project(projectArg);
  const runs = await client.runsOf(project.id, 10);
  if (io.json) {
    printJson(io, { project, runs });
    return 0;
  }
  io.stdout.write(`${project.name} (#${project.id}), pipeline ${project.pipeline}, documents ${project.doc_root}\n`);
  io.stdout.write(table(['RUN', 'STATUS', 'SCOPE', 'STEP', 'STARTED', 'TIME'], runs.map((run) => [
    `#${run.id}`, run.status, run.scope, run.current_step ?? '–', run.started_at ?? '–', duration(run),
  ])));
  return 0;
}

export interface RunOptions {
  scope?: string;
  fromStep?: string;
  queue: boolean;
  follow: boolean;
  cancelOnInterrupt: boolean;
}

/** The scope to use when none is given: one that runs every step, else the whole pipeline from its first step. */
async function defaultStart(client: HubClient, project: Project): Promise<{ scope?: string; from_step?: string }> {
  const pipeline = (await client.pipelines()).find((p) => p.name === project.pipeline);
  if (!pipeline) throw new CliError(`project ${project.name} uses pipeline ${project.pipeline}, which the hub does not define`);
  const whole = pipeline.scopes.find((scope) => scope.first_step === pipeline.steps[0].name);
  return whole ? { scope: whole.name } : { from_step: pipeline.steps[0].name };
}

export async function startRun(client: HubClient, io: Io, projectArg: string, options: RunOptions): Promise<number> {
  const project = await client.project(projectArg);
  const start = options.scope ? { scope: options.scope } : options.fromStep ? { from_step: options.fromStep } : await defaultStart(client, project);
  const run = await client.json<Run>('POST', `/api/projects/${project.id}/runs`, { ...start, triggered_by: 'cli', ...(options.queue && { if_busy: 'queue' }) });
  io.status(`${project.name}: ${describeRun(run)}`);
  if (!options.follow) {
    if (io.json) printJson(io, run);
    else io.stdout.write(`${run.id}\n`);
    return 0;
  }
  return followRun(client, io, run, 0, options.cancelOnInterrupt);
}

export interface LogsOptions {
  follow: boolean;
  /** each line after its time (text lines, not the log's bytes) */
  timestamps?: boolean;
  tail?: number;
  offset?: number;
}

export async function showLogs(client: HubClient, io: Io, runId: number, options: LogsOptions): Promise<number> {
  const run = await client.run(runId);
  let from = options.offset ?? 0;
  if (options.tail !== undefined) {
    // Where the last N lines start, then the bytes from there: exact, whatever the lines hold.
    const page = await client.json<{ offset: number }>('GET', `/api/projects/${run.project_id}/runs/${run.id}/logs?tail=${options.tail}`);
    from = page.offset;
  }
  if (options.follow) return followRun(client, io, run, from, false, options.timestamps);
  if (options.timestamps) {
    // Page by page to the end as it is now (a running run's: its last complete line).
    for (;;) {
      const page = await fetchStampedPage(client, run, from);
      if (!io.stdout.write(page.text)) await new Promise((resolve) => io.stdout.once('drain', resolve));
      if (page.complete || page.next <= from) return 0;
      from = page.next;
    }
  }
  const response = await client.fetch(`/api/projects/${run.project_id}/runs/${run.id}/logs/raw`, { headers: from > 0 ? { range: `bytes=${from}-` } : {} });
  if (response.status === 416) return 0; // nothing from there on yet
  if (!response.ok) throw new CliError(`reading the log: HTTP ${response.status}`);
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (!io.stdout.write(chunk)) await new Promise((resolve) => io.stdout.once('drain', resolve));
  }
  return 0;
}

/**
 * Follows a run's log to stdout and exits with its outcome. Ctrl-C detaches (and says how to come
 * back), or with `cancelOnInterrupt` cancels the run and follows it to its end.
 */
async function followRun(client: HubClient, io: Io, run: Run, from: number, cancelOnInterrupt: boolean, timestamps = false): Promise<number> {
  let lastStep = run.current_step;
  const follower = new LogFollower(client, run, from, io.stdout, {
    timestamps,
    onRun: (changed) => {
      if (!io.interactive || changed.current_step === lastStep || changed.status !== 'running') return;
      lastStep = changed.current_step;
      io.status(`▸ step ${changed.progress_current + 1}/${changed.progress_total}: ${changed.current_step}`);
    },
    onConnection: (state, detail) => io.status(state === 'lost' ? `connection to the hub lost; ${detail}` : `connection back; resuming ${detail}`),
  });
  let interrupts = 0;
  const detached = new Promise<number>((resolve) => {
    const onInterrupt = () => {
      interrupts++;
      if (cancelOnInterrupt && interrupts === 1) {
        io.status(`cancelling run #${run.id}… (Ctrl-C again to detach)`);
        client.json('DELETE', `/api/projects/${run.project_id}/runs/${run.id}`).catch((error: Error) => io.status(`cancel failed: ${error.message}`));
        return;
      }
      follower.stop();
      io.status(`detached from run #${run.id}; it goes on. Re-attach: run-hub logs ${run.id} -f --offset ${follower.position}`);
      resolve(EXIT_CANCELLED);
    };
    process.on('SIGINT', onInterrupt);
    void follower.done.finally(() => process.off('SIGINT', onInterrupt)).catch(() => undefined);
  });
  const outcome = await Promise.race([follower.done.then(async (complete) => {
    const record = await client.run(run.id).catch(() => null);
    io.status(record ? `${describeRun(record)}${record.started_at ? ` in ${duration(record)}` : ''}` : `run #${run.id} ${complete.status}`);
    return exitCodeOf({ status: complete.status, exit_code: complete.exit_code, signal: record?.signal });
  }), detached]);
  return outcome;
}

export async function cancelRun(client: HubClient, io: Io, runId: number): Promise<number> {
  const run = await client.run(runId);
  const cancelled = await client.json<Run>('DELETE', `/api/projects/${run.project_id}/runs/${run.id}`);
  if (io.json) printJson(io, cancelled);
  else io.status(`${describeRun(cancelled)}: cancel requested`);
  return 0;
}
