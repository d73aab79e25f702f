import fs from 'node:fs';
import path from 'node:path';

export interface PipelineStep {
  readonly name: string;
  readonly command: readonly string[];
  readonly cwd: string; // absolute
  readonly timeoutS: number | null;
  readonly env: Readonly<Record<string, string>>;
}

export interface Pipeline {
  readonly name: string;
  readonly steps: readonly PipelineStep[];
  /** scope name -> name of the first step it runs */
  readonly scopes: Readonly<Record<string, string>>;
}

export type Pipelines = ReadonlyMap<string, Pipeline>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

class PipelinesFileError extends Error {}

function fail(file: string, where: string, message: string): never {
  throw new PipelinesFileError(`Bad pipelines file ${file}: ${where}: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads and validates the pipelines file; any fault names the file, the pipeline and the field. */
export function loadPipelines(file: string): Pipelines {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new PipelinesFileError(`Cannot read pipelines file ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new PipelinesFileError(`Bad pipelines file ${file}: not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(parsed) || !isPlainObject(parsed.pipelines)) fail(file, 'top level', 'expected an object with a "pipelines" object');
  const baseDir = path.dirname(file);
  const result = new Map<string, Pipeline>();
  for (const [name, spec] of Object.entries(parsed.pipelines)) {
    const where = `pipeline "${name}"`;
    if (!NAME.test(name)) fail(file, where, 'a pipeline name must be 1-64 letters, digits, "_", "." or "-"');
    if (!isPlainObject(spec)) fail(file, where, 'expected an object');
    if (!Array.isArray(spec.steps) || spec.steps.length === 0) fail(file, `${where}, field "steps"`, 'expected a non-empty array');
    const steps = spec.steps.map((step, index) => parseStep(file, `${where}, field "steps[${index}]"`, step, baseDir));
    const names = new Set<string>();
    for (const step of steps) {
      if (names.has(step.name)) fail(file, `${where}, field "steps"`, `step name "${step.name}" appears twice`);
      names.add(step.name);
    }
    if (!isPlainObject(spec.scopes) || Object.keys(spec.scopes).length === 0) fail(file, `${where}, field "scopes"`, 'expected a non-empty object');
    const scopes: Record<string, string> = {};
    for (const [scope, first] of Object.entries(spec.scopes)) {
      if (!NAME.test(scope)) fail(file, `${where}, field "scopes.${scope}"`, 'a scope name must be 1-64 letters, digits, "_", "." or "-"');
      if (typeof first !== 'string' || !names.has(first)) {
        fail(file, `${where}, field "scopes.${scope}"`, `expected the name of one of its steps (${[...names].join(', ')}), got ${JSON.stringify(first)}`);
      }
      scopes[scope] = first;
    }
    result.set(name, Object.freeze({ name, steps: Object.freeze(steps), scopes: Object.freeze(scopes) }));
  }
  if (result.size === 0) fail(file, 'field "pipelines"', 'defines no pipeline');
  return result;
}

function parseStep(file: string, where: string, step: unknown, baseDir: string): PipelineStep {
  if (!isPlainObject(step)) fail(file, where, 'expected an object');
  const known = new Set(['name', 'command', 'cwd', 'timeout_s', 'env']);
  for (const key of Object.keys(step)) if (!known.has(key)) fail(file, `${where}.${key}`, 'unknown field');
  if (typeof step.name !== 'string' || !NAME.test(step.name)) fail(file, `${where}.name`, `expected 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(step.name)}`);
  if (!Array.isArray(step.command) || step.command.length === 0 || !step.command.every((part) => typeof part === 'string' && part.length > 0)) {
    fail(file, `${where}.command`, 'expected a non-empty array of non-empty strings (argv, run without a shell)');
  }
  if (step.cwd !== undefined && typeof step.cwd !== 'string') fail(file, `${where}.cwd`, 'expected a string');
  if (step.timeout_s !== undefined && step.timeout_s !== null && !(typeof step.timeout_s === 'number' && step.timeout_s > 0 && Number.isFinite(step.timeout_s))) {
    fail(file, `${where}.timeout_s`, `expected a positive number of seconds, got ${JSON.stringify(step.timeout_s)}`);
  }
  if (step.env !== undefined && !(isPlainObject(step.env) && Object.values(step.env).every((v) => typeof v === 'string'))) {
    fail(file, `${where}.env`, 'expected an object of string values');
  }
  return Object.freeze({
    name: step.name,
    command: Object.freeze([...(step.command as string[])]),
    cwd: path.resolve(baseDir, (step.cwd as string | undefined) ?? '.'),
    timeoutS: (step.timeout_s as number | undefined) ?? null,
    env: Object.freeze({ ...((step.env as Record<string, string> | undefined) ?? {}) }),
  });
}

/** The named step and every one after it (a scope names its first step). */
export function stepsFrom(pipeline: Pipeline, first: string): readonly PipelineStep[] {
  const index = pipeline.steps.findIndex((step) => step.name === first);
  return pipeline.steps.slice(index);
}
