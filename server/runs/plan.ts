import { stepsFrom, type Pipeline } from '../pipelines/load.js';
import type { RunSpec } from '../../pipeline-runner/state.js';

/**
 * The steps a run will carry out, resolved when it is created and stored with it, so a run queued
 * before the pipelines file changed runs what it was created for.
 */
export type RunPlan = RunSpec['steps'];

/** A run started with `from_step` records its scope as `from:STEP` (":" is never in a scope's name). */
export const FROM_STEP_PREFIX = 'from:';

/** The plan of a scope, or of `from:STEP` (that step to the end). */
export function planRun(pipeline: Pipeline, scope: string): RunPlan {
  const first = scope.startsWith(FROM_STEP_PREFIX) ? scope.slice(FROM_STEP_PREFIX.length) : pipeline.scopes[scope];
  return stepsFrom(pipeline, first).map((step) => ({
    name: step.name,
    command: [...step.command],
    cwd: step.cwd,
    timeout_s: step.timeoutS,
    env: { ...step.env },
  }));
}

/** A stored plan; null when the run predates plans (or the column holds something else). */
export function parsePlan(text: string | null): RunPlan | null {
  if (!text) return null;
  try {
    const plan = JSON.parse(text) as RunPlan;
    return Array.isArray(plan) && plan.length > 0 ? plan : null;
  } catch {
    return null;
  }
}
