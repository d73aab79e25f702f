import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { runFiles, runnerScript } from '../paths.js';
import { stepsForScope, type Pipeline } from '../pipelines/load.js';
import type { Project } from '../store/projects.js';
import type { RunRow } from '../store/runs.js';
import type { RunSpec } from '../../pipeline-runner/state.js';

export type SpawnedRunner = IdleRunner;

export const settingVariable = (name: string) => `HUB_SETTING_${name.toUpperCase()}`;

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
}

/**
 * Starts a runner as plain `node` on compiled JavaScript, detached in its own process group so that
 * it outlives a restart of the server. It waits for its RunSpec on stdin; with no spec (the server
 * went away first) it exits quietly.
 */
export function spawnIdleRunner(): IdleRunner {
  const token = randomUUID();
  const child = spawn(process.execPath, [runnerScript], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
    env: { ...process.env, HUB_RUN_TOKEN: token },
  });
  if (child.pid === undefined) throw new Error('the runner process could not be started');
  child.stdin!.on('error', () => {}); // a runner that dies is reported by its exit
  child.unref();
  return { child, pid: child.pid, token };
}

/** Hands a run to an idle runner: the steps of its scope, their environment, its files. */
export function assignRun(runner: IdleRunner, config: Config, pipeline: Pipeline, project: Project, run: RunRow): SpawnedRunner {
  const files = runFiles(config.logsDir, project.id, run.id);
  fs.mkdirSync(files.dir, { recursive: true });
  fs.closeSync(fs.openSync(files.log, 'a')); // the log exists from the start, for readers
  const env = stepEnvironment(config, project, run);
  fs.mkdirSync(env.HUB_OUTPUT_DIR, { recursive: true });
  const spec: RunSpec = {
    run_id: run.id,
    log_file: files.log,
    state_file: files.state,
    grace_ms: config.cancelGraceMs,
    max_log_bytes: config.maxLogBytes,
    env: { ...env, HUB_RUN_TOKEN: runner.token },
    steps: stepsForScope(pipeline, run.scope).map((step) => ({
      name: step.name,
      command: [...step.command],
      cwd: step.cwd,
      timeout_s: step.timeoutS,
      env: { ...step.env },
    })),
  };
  runner.child.stdin!.end(JSON.stringify(spec));
  return runner;
}
