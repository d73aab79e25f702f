import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { runFiles, runnerScript } from '../paths.js';
import type { Project } from '../store/projects.js';
import type { RunRow } from '../store/runs.js';
import type { LeaseWatchSpec } from '../../pipeline-runner/leaseWatch.js';
import { TOKEN_VARIABLE, type RunSpec } from '../../pipeline-runner/state.js';
import type { RunPlan } from './plan.js';
import { moveAside } from './orphanedLogs.js';
import type { RunnerProcess } from './runnerProcess.js';
import type { SpawnThread } from './spawnThread.js';

export const settingVariable = (name: string) => `HUB_SETTING_${name.toUpperCase()}`;

/** The hub's own settings, which no step may see (HUB_TOKEN above all). */
const isServerSetting = (name: string) => /^HUB_/i.test(name) || /^(PORT|HOST)$/i.test(name);

/**
 * The environment a runner (and so every step) starts from: the server's, minus the hub's own
 * configuration. PATH, locale, proxies and the API keys a step's tools need are kept.
 */
export function runnerEnvironment(serverEnv: NodeJS.ProcessEnv, token: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(serverEnv)) if (value !== undefined && !isServerSetting(name)) env[name] = value;
  env[TOKEN_VARIABLE] = token;
  return env;
}

/** The variables every step of a run gets. */
export function stepEnvironment(config: Config, project: Project, run: RunRow): Record<string, string> {
  const env: Record<string, string> = {
    HUB_RUN_ID: String(run.id),
    HUB_PROJECT_ID: String(project.id),
    HUB_SCOPE: run.scope,
    HUB_DOC_ROOT: project.doc_root,
    HUB_OUTPUT_DIR: path.join(config.dataDir, 'outputs', String(project.id)),
    PYTHONUNBUFFERED: '1',
  };
  for (const [name, value] of Object.entries(project.settings)) env[settingVariable(name)] = value;
  return env;
}

export type SpawnRunner = () => Promise<RunnerProcess>;

/**
 * Starts runners (plain `node` on compiled JavaScript, detached in their own process group so that
 * they outlive a restart of the server) from the spawn thread. Each waits for its RunSpec on stdin;
 * with none (the server went away first) it exits quietly. Rejects when one cannot start (EAGAIN,
 * EMFILE, ENOENT...).
 */
export function runnerSpawner(thread: SpawnThread, command: readonly string[] = [process.execPath, runnerScript]): SpawnRunner {
  return () => {
    const token = randomUUID();
    return thread.spawn([...command], runnerEnvironment(process.env, token), token);
  };
}

/**
 * Hands a run to an idle runner: its planned steps, their environment, its files, and the project's
 * secrets (on the runner's stdin only: never in a file, an argument or the runner's own environment),
 * and on a worker the file it watches for the worker's lease renewals.
 */
export function assignRun(runner: RunnerProcess, config: Config, project: Project, run: RunRow, plan: RunPlan, secrets: Record<string, string> = {}, lease?: LeaseWatchSpec): void {
  const files = runFiles(config.logsDir, project.id, run.id);
  fs.mkdirSync(files.dir, { recursive: true });
  // A new run's log starts empty: never append to bytes the database does not own.
  for (const file of [files.log, files.state, files.times]) if (fs.existsSync(file)) moveAside(config.logsDir, file);
  fs.closeSync(fs.openSync(files.log, 'a')); // the log exists from the start, for readers
  const env = stepEnvironment(config, project, run);
  fs.mkdirSync(env.HUB_OUTPUT_DIR, { recursive: true });
  const spec: RunSpec = {
    run_id: run.id,
    log_file: files.log,
    state_file: files.state,
    times_file: files.times,
    grace_ms: config.cancelGraceMs,
    max_log_bytes: config.maxLogBytes,
    env: { ...env, [TOKEN_VARIABLE]: runner.token },
    steps: plan.map((step) => ({ ...step, command: [...step.command], env: { ...step.env } })),
    ...(Object.keys(secrets).length > 0 && { secrets }),
    ...(lease && { lease }),
  };
  runner.send(JSON.stringify(spec));
}
