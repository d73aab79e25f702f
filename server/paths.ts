import { fileURLToPath } from 'node:url';
import path from 'node:path';

// Compiled files live in dist/server; the project root is two levels up from there.
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const builtInPipelinesFile = path.join(projectRoot, 'pipelines.json');
export const sqliteMigrationsDir = path.join(projectRoot, 'server', 'store', 'sqlite', 'migrations');
export const postgresMigrationsDir = path.join(projectRoot, 'server', 'store', 'postgres', 'migrations');
export const runnerScript = path.join(projectRoot, 'dist', 'pipeline-runner', 'runner.js');
export const demoDocsDir = path.join(projectRoot, 'demo', 'docs');
export const guiDir = path.join(projectRoot, 'dist', 'gui');

/** The log, state and times files of a run, derived from numeric ids only. */
export function runFiles(logsDir: string, projectId: number, runId: number) {
  if (!Number.isSafeInteger(projectId) || !Number.isSafeInteger(runId) || projectId < 1 || runId < 1) {
    throw new Error(`run files need positive integer ids, got ${projectId}/${runId}`);
  }
  const relative = `${projectId}/${runId}.log`;
  const dir = path.join(logsDir, String(projectId));
  return {
    dir,
    relativeLog: relative,
    log: path.join(dir, `${runId}.log`),
    state: path.join(dir, `${runId}.json`),
    /** the runner's time samples of the log (pipeline-runner/logClock.ts) */
    times: path.join(dir, `${runId}.times`),
    /** the sections its steps mark, indexed by the hub (server/sections/sectionFile.ts) */
    sections: path.join(dir, `${runId}.sections`),
    sectionNames: path.join(dir, `${runId}.section-names`),
  };
}
