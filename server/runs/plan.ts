import { stepsForScope, type Pipeline } from '../pipelines/load.js';
import type { RunSpec } from '../../pipeline-runner/state.js';

/**
 * The steps a run will carry out, resolved when it is created and stored with it, so a run queued
 * before the pipelines file changed runs what it was created for.
 */
export type RunPlan = RunSpec['steps'];

export function planRun(pipeline: Pipeline, scope: string): RunPlan {
  return stepsForScope(pipeline, scope).map((step) => ({
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
