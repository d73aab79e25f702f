import { z } from 'zod';
import { RUN_STATUSES } from '../store/runs.js';
import { WEBHOOK_EVENTS } from '../wire.js';
import { positiveInteger, queryId, queryInteger, retention, settings, text } from './fields.js';

/** Request bodies and query strings of the HTTP API, and the shapes of its answers (for the OpenAPI document). */

// Requests

export const projectFields = {
  name: text(100),
  doc_root: text(4096).describe('an absolute path of an existing directory'),
  pipeline: text(64).describe('the name of a pipeline of the pipelines file'),
  settings: settings.optional(),
  retention: retention.optional(),
};
export const createProjectBody = z.strictObject(projectFields);
export const updateProjectBody = z.strictObject({
  name: projectFields.name.optional(),
  doc_root: projectFields.doc_root.optional(),
  pipeline: projectFields.pipeline.optional(),
  settings: projectFields.settings,
  retention: projectFields.retention,
});

export const startRunBody = z.strictObject({
  scope: text(64).describe('a scope of the project\'s pipeline').optional(),
  from_step: text(64).describe('a step of the project\'s pipeline: the run starts there and goes to the end').optional(),
  triggered_by: text(64).optional(),
  if_busy: z.enum(['reject', 'queue']).describe('"reject" or "queue"').optional(),
}).superRefine((body, ctx) => {
  if (body.scope === undefined && body.from_step === undefined) ctx.addIssue({ code: 'custom', message: 'Expected `scope` (or `from_step`) to be given', params: { code: 'missing_field', field: 'scope' } });
  if (body.scope !== undefined && body.from_step !== undefined) ctx.addIssue({ code: 'custom', message: 'Send either `scope` or `from_step`, not both', params: { code: 'invalid_field', field: 'from_step' } });
});

export const webhookBody = z.strictObject({
  url: text(2048).describe('an http or https address without credentials'),
  secret: text(256).describe('the key of the HMAC in X-Hub-Signature-256'),
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1)
    .describe('a non-empty list of run.started, run.completed, run.failed, run.cancelled').optional(),
});

/** A secret's value: checked by server/secrets/projectSecrets.ts, whose errors never echo it. */
export const secretBody = z.strictObject({
  value: z.string().min(6).max(32 * 1024).describe('the value, 6 to 32768 bytes (UTF-8), without NUL: never returned by any API'),
});

export const listRunsQuery = z.object({ limit: queryInteger(500).optional(), before: queryId.optional() });
export const limitQuery = z.object({ limit: queryInteger(500).optional() });
export const cancelRunQuery = z.object({ purge: z.enum(['true', 'false']).describe('"true" or "false"').optional() });
export const rawLogQuery = z.object({ download: z.enum(['1', '0', 'true', 'false']).describe('1 or 0').optional() });

export const searchQuery = z.object({
  q: z.string().min(1).max(1000).describe('the text (or regular expression) to look for, 1 to 1000 characters'),
  regex: z.enum(['0', '1']).describe('1: `q` is a JavaScript regular expression').optional(),
  case: z.enum(['0', '1']).describe('1: case-sensitive').optional(),
  after: queryInteger(Number.MAX_SAFE_INTEGER).describe('where to start: 0, or a `next_after` of a previous answer').optional(),
  limit: queryInteger(1000).describe('at most this many matches (1 to 1000, default 100)').optional(),
});

export const searchResultSchema = z.object({
  matches: z.array(z.object({ offset: z.number().int(), line: z.string() })),
  next_after: z.number().int(),
  complete: z.boolean(),
  stopped: z.enum(['limit', 'time_budget', 'regex_timeout']).nullable(),
});

export const logPageQuery = z.object({
  offset: queryInteger(Number.MAX_SAFE_INTEGER).optional(),
  tail: queryInteger(10_000).optional(),
  before: queryInteger(Number.MAX_SAFE_INTEGER).optional(),
  timestamps: z.enum(['0', '1']).describe('1: the page says when each line was written (`times`; text: an RFC 3339 time before each line)').optional(),
}).superRefine((query, ctx) => {
  if (query.offset !== undefined && query.tail !== undefined) ctx.addIssue({ code: 'custom', message: 'Give `offset` or `tail`, not both', params: { code: 'invalid_query' } });
  else if (query.offset !== undefined && query.before !== undefined) ctx.addIssue({ code: 'custom', message: '`before` goes with `tail`, not with `offset`', params: { code: 'invalid_query' } });
});

/** `GET …/sections`: a page of the run's sections by id. */
export const sectionPageQuery = z.object({
  after: queryInteger(Number.MAX_SAFE_INTEGER).describe('the `next` of the previous page (0, the default: from the first section)').optional(),
  limit: queryInteger(10_000).describe('sections at most (default 1000, at most 10000)').optional(),
  from: queryInteger(Number.MAX_SAFE_INTEGER).describe('a byte offset of the log: the page starts at the first section starting at or after it (with `after`, whichever comes later)').optional(),
});

// Answers

const isoTime = z.string().describe('ISO 8601, UTC');
export const runStatus = z.enum(RUN_STATUSES);

export const projectSchema = z.object({
  id: positiveInteger,
  name: z.string(),
  doc_root: z.string(),
  pipeline: z.string(),
  settings: z.record(z.string(), z.string()),
  retention: z.object({ runs: z.number().int().nullable().optional(), days: z.number().int().nullable().optional(), log_bytes: z.number().int().nullable().optional() }),
  created_at: isoTime,
});

export const runSchema = z.object({
  id: positiveInteger,
  project_id: positiveInteger,
  scope: z.string().describe('the scope, or from:STEP for a run started with from_step'),
  status: runStatus,
  triggered_by: z.string(),
  created_at: isoTime,
  started_at: isoTime.nullable(),
  finished_at: isoTime.nullable(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  error_message: z.string().nullable(),
  current_step: z.string().nullable(),
  progress_current: z.number().int(),
  progress_total: z.number().int(),
  log_size: z.number().int().describe('bytes; live while the run is active'),
  log_path: z.string().describe('relative to the logs folder'),
  steps: z.array(z.object({
    name: z.string(),
    status: runStatus,
    started_at: isoTime.nullable(),
    finished_at: isoTime.nullable(),
    exit_code: z.number().int().nullable(),
    signal: z.string().nullable(),
    log_start: z.number().int().nullable().describe('where the step\'s header line starts in the log (null until it starts)'),
    log_end: z.number().int().nullable().describe('where its output ends (null while it runs)'),
  })).describe('every step the run carries out, in order; steps not reached are pending'),
});

export const pipelineSchema = z.object({
  name: z.string(),
  steps: z.array(z.object({ name: z.string(), timeout_s: z.number().nullable() })),
  scopes: z.array(z.object({ name: z.string(), first_step: z.string() })),
});

export const logPageSchema = z.object({
  run_id: positiveInteger,
  status: runStatus,
  lines: z.array(z.string()),
  continued: z.array(z.number().int()),
  times: z.array(z.number().int().nullable()).describe('with timestamps: when each line was written, Unix milliseconds (null when unknown); at most one sampling interval (25 ms) late').optional(),
  offset: z.number().int(),
  next: z.number().int(),
  complete: z.boolean(),
});

export const sectionSchema = z.object({
  id: positiveInteger.describe('1, 2, … in the order they open within the run'),
  parent: positiveInteger.nullable().describe('the section it is nested in (null: directly under its step)'),
  depth: z.number().int(),
  step: z.string().nullable().describe('the step it is in (null: before the first step header)'),
  name: z.string(),
  dialect: z.enum(['github', 'gitlab', 'buildkite']),
  key: z.string().nullable().describe('GitLab\'s section name, which its section_end names'),
  start: z.number().int().describe('where its marker line starts'),
  header_end: z.number().int().describe('where its marker line ends: its content starts there'),
  end: z.number().int().nullable().describe('where it ends (null while open): after its end marker\'s line, or where its step or run ended'),
  started_at: z.number().int().nullable().describe('Unix ms, from the line times (GitLab: the marker\'s time when there are none)'),
  ended_at: z.number().int().nullable(),
  collapsed: z.boolean().describe('folded until opened, as its marker asks'),
  muted: z.boolean().describe('Buildkite ~~~: shown de-emphasised'),
});

export const sectionPageSchema = z.object({
  run_id: positiveInteger,
  sections: z.array(sectionSchema),
  next: z.number().int().describe('the `after` of the next page'),
  indexed: z.number().int().describe('bytes of the log indexed so far'),
  complete: z.boolean().describe('the run has ended and its whole log is indexed'),
});

export const webhookSchema = z.object({
  id: positiveInteger,
  project_id: positiveInteger,
  url: z.string(),
  events: z.array(z.string()),
  created_at: isoTime,
});

export const secretSchema = z.object({
  name: z.string().describe('an environment variable name: A-Z, 0-9 and "_", not starting with a digit nor with HUB_'),
  updated_at: isoTime,
}).describe('a secret as listed: its name and when it was last set; its value is never returned');

export const deliverySchema = z.object({
  id: positiveInteger,
  webhook_id: positiveInteger,
  run_id: positiveInteger,
  event: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  tries: z.number().int(),
  last_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  next_attempt_at: isoTime,
  created_at: isoTime,
  updated_at: isoTime,
});

export const errorSchema = z.object({
  error: z.looseObject({ code: z.string(), message: z.string(), field: z.string().optional() }).describe('a stable code, a human message, the field at fault, and details of some codes'),
});

export const healthSchema = z.object({ status: z.literal('ok'), draining: z.boolean().describe('true from SIGTERM on: the hub is closing its clients a few at a time, to be reconnected elsewhere') });

export const readySchema = z.object({
  ok: z.boolean().describe('every check passed'),
  checks: z.record(z.string(), z.object({
    ok: z.boolean(),
    ms: z.number().int().describe('how long the check took'),
    error: z.string().optional().describe('why it failed'),
  })).describe('one per part: database and logs (embedded); database, redis, listen (the notifications connection) and archive (cluster); and serving (false from SIGTERM on: the hub drains)'),
});
