import { z } from 'zod';
import { badRequest, describeValue, type HubError } from '../errors.js';

/** What is parsed: a JSON body (`invalid_field`), a query string (`invalid_query`). */
export type Source = 'body' | 'query';

interface FieldInfo {
  description?: string;
  code?: string;
}

/** The description and error code of the field at `path` (the outermost one set, through optional and pipe wrappers). */
function fieldAt(schema: z.ZodType, path: readonly PropertyKey[]): FieldInfo {
  let current: z.ZodType | undefined = schema;
  for (const key of path) {
    current = current && objectOf(current)?.shape[key as string];
    if (!current) return {};
  }
  const info: FieldInfo = {};
  for (let layer: z.ZodType | undefined = current; layer; layer = innerOf(layer)) {
    info.description ??= layer.description;
    info.code ??= (layer.meta() as Record<string, unknown> | undefined)?.['x-error-code'] as string | undefined;
  }
  return info;
}

function innerOf(schema: z.ZodType): z.ZodType | undefined {
  const def = schema.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; schema?: z.ZodType };
  if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') return def.innerType;
  if (def.type === 'pipe') return def.in;
  return undefined;
}

function objectOf(schema: z.ZodType): z.ZodObject | undefined {
  for (let layer: z.ZodType | undefined = schema; layer; layer = innerOf(layer)) {
    if (layer instanceof z.ZodObject) return layer;
  }
  return undefined;
}

/**
 * The first problem as the API's error: an unknown field first (`unknown_field`), then a missing one
 * (`missing_field`), then a bad value (`invalid_field`, `invalid_query`, or the field's own code),
 * with a message naming the field and echoing the value. A check that says its own code and
 * message (`params.code`) is passed on as it is.
 */
export function errorOf(schema: z.ZodType, error: z.ZodError, source: Source): HubError {
  const issues = error.issues;
  const unknown = issues.find((issue) => issue.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const field = [...unknown.path, unknown.keys[0]].join('.').slice(0, 64);
    const allowed = Object.keys(objectOf(schema)?.shape ?? {});
    return badRequest('unknown_field', `Unknown field \`${field}\`; allowed fields: ${allowed.join(', ')}`, { field });
  }
  const own = issues.find((issue) => issue.code === 'custom' && (issue.params as { code?: string } | undefined)?.code);
  const issue = own ?? issues.find((i) => i.code === 'invalid_type' && i.input === undefined) ?? issues[0];
  // An item of a list is reported as the list (`events`, not `events.0`).
  const firstIndex = issue.path.findIndex((key) => typeof key === 'number');
  const path = firstIndex === -1 ? issue.path : issue.path.slice(0, firstIndex);
  // Names after the first are the client's own (a setting's name): bounded in what is echoed.
  const field = path.map((key, index) => (index === 0 ? String(key) : String(key).slice(0, 64))).join('.');
  const params = (issue as { params?: { code?: string; field?: string } }).params;
  if (params?.code) return badRequest(params.code, issue.message, { field: params.field ?? field });
  if (issue.code === 'invalid_type' && issue.input === undefined && source === 'body') {
    return badRequest('missing_field', `Expected \`${field}\` to be given`, { field });
  }
  const info = fieldAt(schema, path);
  const code = info.code ?? (source === 'query' ? 'invalid_query' : 'invalid_field');
  const expected = info.description ?? issue.message.toLowerCase();
  return badRequest(code, `Expected \`${field}\` to be ${expected}, got ${describeValue(issue.input)}`, path.length === 0 ? {} : { field });
}

/**
 * zod leaves out an own `__proto__` key (JSON.parse makes one from `{"__proto__": …}`) without a
 * word, which would lose what the client sent: it is refused instead, as unknown at the top level
 * and as an invalid name inside.
 */
function refuseProtoKeys(value: unknown, path: string[] = []): void {
  if (typeof value !== 'object' || value === null) return;
  if (Object.hasOwn(value, '__proto__')) {
    const field = [...path, '__proto__'].join('.');
    if (path.length === 0) throw badRequest('unknown_field', 'Unknown field `__proto__`', { field });
    throw badRequest('invalid_field', `\`${field}\` is not an accepted name`, { field });
  }
  if (path.length < 4) for (const [key, inner] of Object.entries(value)) refuseProtoKeys(inner, [...path, key.slice(0, 64)]);
}

/** Parses `value` with `schema`, or throws the API's error for the first problem. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, source: Source): z.output<T> {
  refuseProtoKeys(value);
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw errorOf(schema, result.error, source);
  return result.data;
}
