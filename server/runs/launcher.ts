import type { RunnerState } from '../../pipeline-runner/state.js';
import type { Project } from '../store/projects.js';
import type { RunRow } from '../store/runs.js';
import type { RunPlan } from './plan.js';
import type { WatchedRunner } from './runnerWatch.js';

/** The runner that carries out a run, recorded with its claim so that a restart finds it again. */
export interface RunnerIdentity {
  pid: number;
  token: string;
}

export interface LaunchRequest {
  run: RunRow;
  project: Project;
  plan: RunPlan;
  /** Records the claim (pending → running, with this runner); null when the run is no longer pending. */
  claim(runner: RunnerIdentity): Promise<RunRow | null>;
}

export interface LauncherEvents {
  /** The runner reported progress. A rejection makes the launcher report the same state again. */
  onProgress(runner: WatchedRunner, state: RunnerState): Promise<void>;
  /** The runner has ended (final state, or gone): record the outcome. Idempotent; a rejection is retried. */
  onEnded(runner: WatchedRunner): Promise<void>;
}

/** No runner could be started (EAGAIN, EMFILE, ...): the run was not claimed. */
export class RunnerStartError extends Error {}

/**
 * The seam between runs and the processes that carry them out: start a run's runner, cancel it,
 * learn that it ended, and re-attach to it after a restart. Today's implementation starts runners on
 * this machine (`LocalLauncher`); the runner itself is the same whoever launches it.
 */
export interface Launcher {
  /**
   * Readies a runner, records the claim, then hands the run over. Resolves to the claimed run, or
   * null when the claim was refused; rejects with RunnerStartError when no runner could start, or
   * with the claim's own error (nothing started then).
   */
  launch(request: LaunchRequest): Promise<RunRow | null>;
  /** Asks the run's runner to stop (SIGTERM, then SIGKILL with all it started); false if it follows no such run. */
  cancel(runId: number): boolean;
  /** After a restart: follow the runner of a run recorded as running (ended meanwhile: reported at once). */
  reattach(run: RunRow): void;
  /** Stops following runners (they keep running and are re-attached on the next start), once runs given out are handed over. */
  close(): Promise<void>;
}
