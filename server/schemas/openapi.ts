import { z } from 'zod';
import * as http from './http.js';
import { clientMessage, serverMessage } from './ws.js';

/**
 * The OpenAPI 3.1 document of the HTTP API (`GET /api/openapi.json`), and the JSON Schema of the
 * WebSocket messages beside it (`GET /api/messages.schema.json`), made from the same zod schemas
 * that validate requests. test/http/openapi.test.ts holds every route against it, and the test
 * helpers check every response the suite receives.
 */

type Json = Record<string, unknown>;

const COMPONENTS: Record<string, z.ZodType> = {
  Project: http.projectSchema,
  Run: http.runSchema,
  Pipeline: http.pipelineSchema,
  LogPage: http.logPageSchema,
  Section: http.sectionSchema,
  SectionPage: http.sectionPageSchema,
  Webhook: http.webhookSchema,
  WebhookDelivery: http.deliverySchema,
  Secret: http.secretSchema,
  Error: http.errorSchema,
};

/** JSON Schema of one zod schema, without its own `$schema`; named parts refer to the components. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  return rest;
}

/** Named schemas, each referring to the others at `prefix` + name. */
function definitionsOf(named: Record<string, z.ZodType>, prefix: string): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `${prefix}${id}`, io: 'output', unrepresentable: 'any' }) as { schemas: Record<string, Json> };
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema]));
}

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } });
const text = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string' } } } });
const empty = (description: string) => ({ description });

const ERRORS: Record<string, string> = {
  400: 'Bad input: `field` names it',
  401: 'HUB_TOKEN is set and the request does not carry it',
  403: 'A Host or Origin that is not allowed',
  404: 'No such project, run, webhook or secret',
  409: 'Conflicts with the current state (a busy project, a taken name, a finished run)',
  413: 'The body is over 1 MiB',
  415: 'The body is not JSON',
  416: 'A range past the end, or too many ranges',
  429: 'Too many requests (run starts per project)',
  503: 'The database is busy (`database_busy`), the server has no file descriptor free (`server_busy`), Redis did not answer in time or is between masters (`log_store_unavailable`), or a finished log is not whole in its store just now (`log_unavailable`): try again after Retry-After',
  507: 'The disk is full (`storage_full`): the write was refused; reads go on',
};
/** What every request may get besides its own answers. */
const ALWAYS = [401, 403, 503, 507];

function errors(...statuses: number[]): Json {
  return Object.fromEntries([...new Set([...statuses, ...ALWAYS])].map((status) => [String(status), json(ref('Error'), ERRORS[status])]));
}

const pathId = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'integer', minimum: 1 } });
const PROJECT = pathId('projectId', 'a project id');
const RUN = pathId('runId', 'a run id');
const WEBHOOK = pathId('webhookId', 'a webhook id');
const SECRET_NAME = { name: 'name', in: 'path', required: true, description: 'the secret\'s name: the variable steps get it as', schema: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]*$', maxLength: 128 } };

function queryOf(schema: z.ZodObject): Json[] {
  const { properties = {}, required = [] } = schemaOf(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(properties).map(([name, property]) => ({ name, in: 'query', required: required.includes(name), description: property.description, schema: property }));
}

const body = (schema: z.ZodType, description: string) => ({ required: true, description, content: { 'application/json': { schema: schemaOf(schema, 'input') } } });

const POLL_INTERVAL = { 'Poll-Interval': { description: 'milliseconds to wait before polling again; 0: go on at once; -1: complete, stop', schema: { type: 'integer' } } };

function operations(): Record<string, Record<string, Json>> {
  return {
    '/api/health': { get: { summary: 'Alive (liveness)', responses: { 200: json(schemaOf(http.healthSchema, 'output'), 'The server answers'), ...errors() } } },
    '/api/ready': {
      get: {
        summary: 'Ready (readiness): the database, Redis, the notifications connection and the archive answer, each within HUB_READY_TIMEOUT_MS',
        responses: { 200: json(schemaOf(http.readySchema, 'output'), 'Every part answers'), ...errors(), 503: json(schemaOf(http.readySchema, 'output'), 'A part did not answer: `checks` says which, and why') },
      },
    },
    '/api/openapi.json': { get: { summary: 'This document', responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1'), ...errors() } } },
    '/api/messages.schema.json': { get: { summary: 'The WebSocket messages (`/ws`) as JSON Schema', responses: { 200: json({ type: 'object' }, 'JSON Schema 2020-12: ClientMessage and ServerMessage'), ...errors() } } },
    '/api/pipelines': { get: { summary: 'Pipelines of the pipelines file', responses: { 200: json({ type: 'array', items: ref('Pipeline') }, 'Every pipeline with its steps and scopes'), ...errors() } } },
    '/api/runs/{runId}': { get: { summary: 'A run by its id alone', parameters: [RUN], responses: { 200: json(ref('Run'), 'The run'), ...errors(400, 404) } } },
    '/api/projects': {
      get: { summary: 'Projects', responses: { 200: json({ type: 'array', items: ref('Project') }, 'Every project'), ...errors() } },
      post: { summary: 'Create a project', requestBody: body(http.createProjectBody, 'The project'), responses: { 201: json(ref('Project'), 'Created'), ...errors(400, 409, 413, 415) } },
    },
    '/api/projects/{projectId}': {
      get: { summary: 'A project', parameters: [PROJECT], responses: { 200: json(ref('Project'), 'The project'), ...errors(400, 404) } },
      patch: { summary: 'Change a project', parameters: [PROJECT], requestBody: body(http.updateProjectBody, 'The fields to change'), responses: { 200: json(ref('Project'), 'Changed'), ...errors(400, 404, 409, 413, 415) } },
      delete: { summary: 'Delete a project with its runs, logs and outputs', parameters: [PROJECT], responses: { 204: empty('Deleted'), ...errors(400, 404, 409) } },
    },
    '/api/projects/{projectId}/runs': {
      get: { summary: 'Runs of a project, newest first', parameters: [PROJECT, ...queryOf(http.listRunsQuery)], responses: { 200: json({ type: 'array', items: ref('Run') }, 'A page of runs'), ...errors(400, 404) } },
      post: { summary: 'Start (or queue) a run', parameters: [PROJECT], requestBody: body(http.startRunBody, '`scope` or `from_step`'), responses: { 201: json(ref('Run'), 'Created: pending or running'), ...errors(400, 404, 409, 413, 415, 429) } },
    },
    '/api/projects/{projectId}/runs/current': {
      get: { summary: 'The running run, else the oldest pending one, or null', parameters: [PROJECT], responses: { 200: json({ oneOf: [ref('Run'), { type: 'null' }] }, 'The run, or null'), ...errors(400, 404) } },
    },
    '/api/projects/{projectId}/runs/{runId}': {
      get: { summary: 'A run', parameters: [PROJECT, RUN], responses: { 200: json(ref('Run'), 'The run'), ...errors(400, 404) } },
      delete: { summary: 'Cancel a run, or purge a finished one', parameters: [PROJECT, RUN, ...queryOf(http.cancelRunQuery)], responses: { 202: json(ref('Run'), 'Cancelling'), 204: empty('Purged'), ...errors(400, 404, 409) } },
    },
    '/api/projects/{projectId}/runs/{runId}/logs': {
      get: {
        summary: 'Lines of a run\'s log: the last N, from an offset, or as Server-Sent Events',
        parameters: [PROJECT, RUN, ...queryOf(http.logPageQuery), { name: 'Last-Event-ID', in: 'header', required: false, description: 'SSE: resume from this `next`', schema: { type: 'string' } }],
        responses: {
          200: {
            description: 'JSON (default), text (`Accept: text/plain`; offsets in X-Log-Offset, X-Log-Next, X-Log-Complete) or SSE (`Accept: text/event-stream`)',
            headers: POLL_INTERVAL,
            content: { 'application/json': { schema: ref('LogPage') }, 'text/plain': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...errors(400, 404),
        },
      },
    },
    '/api/projects/{projectId}/runs/{runId}/logs/search': {
      get: {
        summary: 'Search the whole log: matching lines in file order, with where to go on',
        parameters: [PROJECT, RUN, ...queryOf(http.searchQuery)],
        responses: { 200: json(schemaOf(http.searchResultSchema, 'output'), 'Matches; `complete` once the end was reached; `stopped` says why it ended before'), ...errors(400, 404) },
      },
    },
    '/api/projects/{projectId}/runs/{runId}/logs/raw': {
      get: {
        summary: 'The log file as written, with Range',
        parameters: [PROJECT, RUN, ...queryOf(http.rawLogQuery), { name: 'Range', in: 'header', required: false, schema: { type: 'string' } }],
        responses: { 200: { ...text('text/plain', 'The whole file'), headers: POLL_INTERVAL }, 206: text('text/plain', 'The range asked for'), ...errors(400, 404, 416) },
      },
    },
    '/api/projects/{projectId}/runs/{runId}/sections': {
      get: {
        summary: 'The sections a run\'s steps mark in its log (GitHub, GitLab, Buildkite markers), a page at a time by id',
        parameters: [PROJECT, RUN, ...queryOf(http.sectionPageQuery)],
        responses: { 200: json(ref('SectionPage'), 'Sections after `after`; `complete` once the run ended and its whole log is indexed'), ...errors(400, 404) },
      },
    },
    '/api/projects/{projectId}/webhooks': {
      get: { summary: 'Webhooks of a project (without their secrets)', parameters: [PROJECT], responses: { 200: json({ type: 'array', items: ref('Webhook') }, 'The webhooks'), ...errors(400, 404) } },
      post: { summary: 'Add a webhook', parameters: [PROJECT], requestBody: body(http.webhookBody, 'Where to, signed with what, on which events'), responses: { 201: json(ref('Webhook'), 'Added'), ...errors(400, 404, 413, 415) } },
    },
    '/api/projects/{projectId}/webhooks/{webhookId}': {
      delete: { summary: 'Remove a webhook', parameters: [PROJECT, WEBHOOK], responses: { 204: empty('Removed'), ...errors(400, 404) } },
    },
    '/api/projects/{projectId}/webhooks/{webhookId}/deliveries': {
      get: { summary: 'Recent deliveries, newest first', parameters: [PROJECT, WEBHOOK, ...queryOf(http.limitQuery)], responses: { 200: json({ type: 'array', items: ref('WebhookDelivery') }, 'The deliveries'), ...errors(400, 404) } },
    },
    '/api/projects/{projectId}/secrets': {
      get: { summary: 'Secrets of a project: names and update times, never values', parameters: [PROJECT], responses: { 200: json({ type: 'array', items: ref('Secret') }, 'The secrets, by name'), ...errors(400, 404) } },
    },
    '/api/projects/{projectId}/secrets/{name}': {
      put: {
        summary: 'Set a secret (write-only): steps get it as the variable `name`; the runner masks it, and its base64, URL-encoded and JSON-escaped forms, as [MASKED] in the log',
        parameters: [PROJECT, SECRET_NAME],
        requestBody: body(http.secretBody, 'The value. Under 6 bytes: 400 `secret_too_short`. No error repeats it'),
        responses: { 200: json(ref('Secret'), 'Replaced'), 201: json(ref('Secret'), 'Created'), ...errors(400, 404, 413, 415) },
      },
      delete: { summary: 'Delete a secret (runs started from now on do not get it)', parameters: [PROJECT, SECRET_NAME], responses: { 204: empty('Deleted'), ...errors(400, 404) } },
    },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: text('text/plain', 'Prometheus text format 0.0.4'), ...errors() } } },
    '/login': {
      get: { summary: 'The sign-in page (when HUB_TOKEN is set)', responses: { 200: text('text/html', 'A form') } },
      post: {
        summary: 'Sign in: sets the token cookie',
        requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] } } } },
        responses: { 302: empty('Signed in: to the GUI'), 401: text('text/html', 'A wrong token'), ...errors(413, 415) },
      },
    },
    ...Object.fromEntries(['/', '/index.html', '/app.js', '/app.js.map', '/app.css'].map((file) => [file, { get: { summary: 'The GUI', responses: { 200: text('*/*', 'A file of the bundled GUI'), 503: text('text/plain', 'The GUI is not built'), ...errors() } } }])),
  };
}

let built: Json | null = null;

export function openApiDocument(): Json {
  built ??= {
    openapi: '3.1.0',
    info: { title: 'run hub', version: '0.1.0', description: 'Start, stop and watch pipeline runs per project. Live logs also over WebSocket at /ws: see /api/messages.schema.json.' },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    components: {
      schemas: definitionsOf(COMPONENTS, '#/components/schemas/'),
      securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'HUB_TOKEN, when set; browsers use the cookie /login sets' } },
    },
    security: [{}, { token: [] }],
    paths: operations(),
  };
  return built;
}

let messages: Json | null = null;

/** The WebSocket messages as JSON Schema 2020-12. */
export function messagesSchema(): Json {
  messages ??= {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'run hub WebSocket messages (/ws, JSON text frames)',
    anyOf: [{ $ref: '#/$defs/ClientMessage' }, { $ref: '#/$defs/ServerMessage' }],
    $defs: definitionsOf({ ClientMessage: clientMessage, ServerMessage: serverMessage, Run: http.runSchema }, '#/$defs/'),
  };
  return messages;
}
