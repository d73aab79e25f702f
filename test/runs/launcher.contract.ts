import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig, type Config } from '../../server/config.js';
import { RunnerStartError, type Launcher, type LauncherEvents, type RunnerIdentity } from '../../server/runs/launcher.js';
import type { WatchedRunner } from '../../server/runs/runnerWatch.js';
import type { RunPlan } from '../../server/runs/plan.js';
import type { Project } from '../../server/store/projects.js';
import type { RunRow } from '../../server/store/runs.js';
import { readStateFile } from '../../pipeline-runner/state.js';
import { isAlive, waitFor } from '../helpers/hub.js';

export type MakeLauncher = (config: Config, events: LauncherEvents, runnerCommand?: string[]) => Launcher;

interface Context {
  config: Config;
  ended: WatchedRunner[];
  launchers: Launcher[];
  launcher(runnerCommand?: string[]): Launcher;
}

const plan = (script: string): RunPlan => [{ name: 'only', command: ['sh', '-c', script], cwd: '/', timeout_s: null, env: {} }];
const project = (dir: string): Project => ({ id: 1, name: 'p', doc_root: dir, pipeline: 'p', settings: {}, retention: {}, created_at: '' });
let nextRun = 1;
const pendingRun = (): RunRow => ({
  id: nextRun++, project_id: 1, scope: 'all', status: 'pending', triggered_by: 'test', created_at: '', started_at: null, finished_at: null, exit_code: null, signal: null,
  error_message: null, current_step: null, progress_current: 0, progress_total: 1, log_size: 0, runner_pid: null, runner_token: null, plan: null, steps: null,
});

/**
 * What every Launcher must do, wherever runners run: start a claimed run, never an unclaimed one,
 * report how each run ended, cancel, re-attach after a restart, and say when no runner can start.
 */
export function launcherContract(name: string, make: MakeLauncher): void {
  const contract = suite<Context>(`launcher contract: ${name}`);
  contract.before.each((context) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-launcher-'));
    context.config = loadConfig({ HUB_DATA_DIR: 'data', HUB_LOGS_DIR: 'logs', HUB_CANCEL_GRACE_MS: '500' }, dir);
    context.ended = [];
    context.launchers = [];
    context.launcher = (runnerCommand) => {
      const launcher = make(context.config, { onProgress: async () => {}, onEnded: async (runner) => void context.ended.push(runner) }, runnerCommand);
      context.launchers.push(launcher);
      return launcher;
    };
  });
  contract.after.each(async ({ launchers }) => void (await Promise.all(launchers.map((launcher) => launcher.close()))));

  const claimWith = (row: RunRow, claims: RunnerIdentity[]) => async (runner: RunnerIdentity) => {
    claims.push(runner);
    return { ...row, status: 'running' as const, runner_pid: runner.pid, runner_token: runner.token };
  };
  const stateOf = (config: Config, run: RunRow) => readStateFile(path.join(config.logsDir, '1', `${run.id}.json`), run.id);

  contract('a claimed run is carried out: its log is written and its end reported once, with the final state', async ({ config, ended, launcher }) => {
    const run = pendingRun();
    const claims: RunnerIdentity[] = [];
    const started = await launcher().launch({ run, project: project(config.dataDir), plan: plan('echo carried out'), claim: claimWith(run, claims) });
    assert.is(started?.status, 'running');
    assert.is(claims.length, 1);
    assert.ok(claims[0].pid > 0 && claims[0].token.length > 10);
    await waitFor(() => ended.length === 1, 'the end of the run');
    const state = stateOf(config, run);
    assert.is(state.kind === 'state' && state.state.status, 'completed');
    assert.match(fs.readFileSync(path.join(config.logsDir, '1', `${run.id}.log`), 'utf8'), 'carried out\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.is(ended.length, 1, 'reported once');
  });

  contract('a refused claim starts nothing', async ({ config, ended, launcher }) => {
    const run = pendingRun();
    const started = await launcher().launch({ run, project: project(config.dataDir), plan: plan('echo never'), claim: async () => null });
    assert.is(started, null);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.not.ok(fs.existsSync(path.join(config.logsDir, '1', `${run.id}.log`)));
    assert.is(ended.length, 0);
  });

  contract('cancel stops the run (SIGTERM, then SIGKILL after the grace) and its end says cancelled', async ({ config, ended, launcher }) => {
    const run = pendingRun();
    const claims: RunnerIdentity[] = [];
    const it = launcher();
    await it.launch({ run, project: project(config.dataDir), plan: plan("trap '' TERM; echo started; sleep 30"), claim: claimWith(run, claims) });
    await waitFor(() => fs.existsSync(path.join(config.logsDir, '1', `${run.id}.log`)) && fs.readFileSync(path.join(config.logsDir, '1', `${run.id}.log`), 'utf8').includes('started'), 'the step');
    assert.ok(it.cancel(run.id));
    assert.not.ok(it.cancel(987654), 'a run it does not follow');
    await waitFor(() => ended.length === 1, 'the end after the cancel', 10_000);
    const state = stateOf(config, run);
    assert.is(state.kind === 'state' && state.state.status, 'cancelled');
    // Its end is read from its final state, written just before the runner exits: gone soon after.
    await waitFor(() => !isAlive(claims[0].pid), 'the runner to exit after its end', 5000);
  });

  contract('after a restart, a new launcher re-attaches to a live runner and reports its end', async ({ config, ended, launcher }) => {
    const run = pendingRun();
    const claims: RunnerIdentity[] = [];
    const first = launcher();
    await first.launch({ run, project: project(config.dataDir), plan: plan('sleep 1; echo after the restart'), claim: claimWith(run, claims) });
    await first.close(); // the server went away; the runner did not
    assert.ok(isAlive(claims[0].pid));
    const second = launcher();
    second.reattach({ ...run, status: 'running', runner_pid: claims[0].pid, runner_token: claims[0].token });
    await waitFor(() => ended.length === 1, 'the end, seen by the new launcher', 10_000);
    assert.match(fs.readFileSync(path.join(config.logsDir, '1', `${run.id}.log`), 'utf8'), 'after the restart');
  });

  contract('a runner that dies as soon as it has started is reported as ended: its run is never left running', async ({ config, ended, launcher }) => {
    const run = pendingRun();
    const claims: RunnerIdentity[] = [];
    // Says it is ready, then exits before it could read its run.
    const started = await launcher(['sh', '-c', 'echo ready; exit 0']).launch({ run, project: project(config.dataDir), plan: plan('echo never'), claim: claimWith(run, claims) });
    assert.is(started?.status, 'running');
    await waitFor(() => ended.length === 1, 'the end of a runner that died at once', 5000);
    assert.equal(ended[0].exited, { code: 0, signal: null });
    assert.is(stateOf(config, run).kind, 'missing');
  });

  contract('when no runner can start, launch says so and claims nothing', async ({ config, launcher }) => {
    const run = pendingRun();
    const claims: RunnerIdentity[] = [];
    try {
      await launcher([path.join(config.dataDir, 'no-such-runner')]).launch({ run, project: project(config.dataDir), plan: plan('true'), claim: claimWith(run, claims) });
      assert.unreachable('it should have failed');
    } catch (error) {
      assert.instance(error, RunnerStartError);
    }
    assert.is(claims.length, 0);
  });

  contract.run();
}

