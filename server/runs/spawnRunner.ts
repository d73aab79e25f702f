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

export interface SpawnedRunner {
  child: ChildProcess;
  pid: number;
  token: string;
}

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

/**
 * Starts the runner as plain `node` on compiled JavaScript, detached in its own process group so
 * that it outlives a restart of the server. Its stderr goes to the run's log, where a crash is seen.
 */
export function spawnRunner(config: Config, pipeline: Pipeline, project: Project, run: RunRow): SpawnedRunner {
  const files = runFiles(config.logsDir, project.id, run.id);
  fs.mkdirSync(files.dir, { recursive: true });
  const env = stepEnvironment(config, project, run);
  fs.mkdirSync(env.HUB_OUTPUT_DIR, { recursive: true });
  const token = randomUUID();
  const spec: RunSpec = {
    run_id: run.id,
    log_file: files.log,
    state_file: files.state,
    grace_ms: config.cancelGraceMs,
    max_log_bytes: config.maxLogBytes,
    env: { ...env, HUB_RUN_TOKEN: token },
    steps: stepsForScope(pipeline, run.scope).map((step) => ({
      name: step.name,
      command: [...step.command],
      cwd: step.cwd,
      timeout_s: step.timeoutS,
      env: { ...step.env },
    })),
  };
  const logFd = fs.openSync(files.log, 'a');
  try {
    const child = spawn(process.execPath, [runnerScript, `--run=${run.id}`], {
      detached: true,
      stdio: ['pipe', 'ignore', logFd],
      env: { ...process.env, HUB_RUN_ID: String(run.id), HUB_RUN_TOKEN: token },
    });
    if (child.pid === undefined) throw new Error('the runner process could not be started');
    child.stdin!.on('error', () => {}); // a runner that dies at once is reported by its exit
    child.stdin!.end(JSON.stringify(spec));
    child.unref();
    return { child, pid: child.pid, token };
  } finally {
    fs.closeSync(logFd);
  }
}
