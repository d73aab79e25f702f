import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { runFiles, runnerScript } from '../paths.js';
import type { Project } from '../store/projects.js';
import type { RunRow } from '../store/runs.js';
import { TOKEN_VARIABLE, type RunSpec } from '../../pipeline-runner/state.js';
import type { RunPlan } from './plan.js';
import { moveAside } from './orphanedLogs.js';


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

/** A runner process started ahead of time, waiting on stdin for the run it will carry out. */
export interface IdleRunner {
  child: ChildProcess;
  pid: number;
  /** unique to this process; the run that takes it carries it as HUB_RUN_TOKEN */
  token: string;
  /** set as soon as the process exits, whoever is watching it by then */
  exited: { code: number | null; signal: string | null } | null;
}

export type SpawnRunner = () => Promise<IdleRunner>;

/**
 * Starts a runner as plain `node` on compiled JavaScript, detached in its own process group so that
 * it outlives a restart of the server. It waits for its RunSpec on stdin; with no spec (the server
 * went away first) it exits quietly. Rejects when the process cannot start (EAGAIN, EMFILE, ...).
 */
export function spawnIdleRunner(command: readonly string[] = [process.execPath, runnerScript]): Promise<IdleRunner> {
  const token = randomUUID();
  let child: ChildProcess;
  try {
    child = spawn(command[0], command.slice(1), {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: runnerEnvironment(process.env, token),
    });
  } catch (error) {
    return Promise.reject(error as Error);
  }
  // Listeners first: an 'error' with no listener would end the server.
  child.stdin?.on('error', () => {}); // a runner that dies is reported by its exit
  const runner: IdleRunner = { child, pid: child.pid ?? 0, token, exited: null };
  child.once('exit', (code, signal) => (runner.exited = { code, signal }));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      child.on('error', () => {}); // later errors (a kill that failed) are not fatal either
      runner.pid = child.pid!;
      child.unref();
      resolve(runner);
    });
  });
}

/** Hands a run to an idle runner: its planned steps, their environment, its files. */
export function assignRun(runner: IdleRunner, config: Config, project: Project, run: RunRow, plan: RunPlan): void {
  const files = runFiles(config.logsDir, project.id, run.id);
  fs.mkdirSync(files.dir, { recursive: true });
  // A new run's log starts empty: never append to bytes the database does not own.
  for (const file of [files.log, files.state]) if (fs.existsSync(file)) moveAside(config.logsDir, file);
  fs.closeSync(fs.openSync(files.log, 'a')); // the log exists from the start, for readers
  const env = stepEnvironment(config, project, run);
  fs.mkdirSync(env.HUB_OUTPUT_DIR, { recursive: true });
  const spec: RunSpec = {
    run_id: run.id,
    log_file: files.log,
    state_file: files.state,
    grace_ms: config.cancelGraceMs,
    max_log_bytes: config.maxLogBytes,
    env: { ...env, [TOKEN_VARIABLE]: runner.token },
    steps: plan.map((step) => ({ ...step, command: [...step.command], env: { ...step.env } })),
  };
  runner.child.stdin!.end(JSON.stringify(spec));
}
