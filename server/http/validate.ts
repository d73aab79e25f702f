import { badRequest, describeValue } from '../errors.js';
import type { Retention } from '../wire.js';

export type Body = Record<string, unknown>;

/** Rejects fields the endpoint does not know, so a typo is an error instead of being ignored. */
export function rejectUnknownFields(body: Body, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw badRequest('unknown_field', `Unknown field \`${key.slice(0, 64)}\`; allowed fields: ${allowed.join(', ')}`, { field: key.slice(0, 64) });
    }
  }
}

const CONTROL = /[\u0000-\u001f\u007f]/;

export function readString(body: Body, field: string, options: { required: boolean; max: number; pattern?: RegExp; hint?: string }): string | undefined {
  const value = body[field];
  if (value === undefined) {
    if (options.required) throw badRequest('missing_field', `Expected \`${field}\` to be given`, { field });
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '' || value.length > options.max || CONTROL.test(value) || value.isWellFormed?.() === false) {
    throw badRequest('invalid_field', `Expected \`${field}\` to be a non-empty string of at most ${options.max} characters without control characters, got ${describeValue(value)}`, { field });
  }
  if (options.pattern && !options.pattern.test(value)) {
    throw badRequest('invalid_field', `Expected \`${field}\` to be ${options.hint}, got ${describeValue(value)}`, { field });
  }
  return value;
}

export const SETTING_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** Settings become environment variables (HUB_SETTING_<NAME>): names must be safe variable names. */
export function readSettings(body: Body, field: string): Record<string, string> | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('invalid_field', `Expected \`${field}\` to be an object of string values, got ${describeValue(value)}`, { field });
  }
  const entries = Object.entries(value);
  if (entries.length > 100) throw badRequest('invalid_field', `Expected \`${field}\` to have at most 100 entries, got ${entries.length}`, { field });
  const settings: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [name, setting] of entries) {
    if (!SETTING_NAME.test(name)) {
      throw badRequest('invalid_field', `Expected setting names in \`${field}\` to be letters, digits and "_" starting with a letter, got ${describeValue(name)}`, { field: `${field}.${name.slice(0, 64)}` });
    }
    if (seen.has(name.toUpperCase())) throw badRequest('invalid_field', `Setting ${describeValue(name)} in \`${field}\` differs from another only by case`, { field: `${field}.${name}` });
    seen.add(name.toUpperCase());
    if (typeof setting !== 'string' || setting.length > 4096 || setting.includes('\0') || !setting.isWellFormed()) {
      throw badRequest('invalid_field', `Expected \`${field}.${name}\` to be a string of at most 4096 characters, got ${describeValue(setting)}`, { field: `${field}.${name}` });
    }
    settings[name] = setting;
  }
  return settings;
}

export const RETENTION_LIMITS = ['runs', 'days', 'log_bytes'] as const;

/** `{runs, days, log_bytes}`: each a positive integer, or null for no limit; a missing key takes the hub's default. */
export function readRetention(body: Body, field: string): Retention | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('invalid_field', `Expected \`${field}\` to be an object with any of ${RETENTION_LIMITS.join(', ')}, got ${describeValue(value)}`, { field });
  }
  const retention: Retention = {};
  for (const [key, limit] of Object.entries(value)) {
    if (!(RETENTION_LIMITS as readonly string[]).includes(key)) throw badRequest('unknown_field', `Unknown field \`${field}.${key.slice(0, 64)}\`; known: ${RETENTION_LIMITS.join(', ')}`, { field: `${field}.${key.slice(0, 64)}` });
    if (limit !== null && !(Number.isSafeInteger(limit) && (limit as number) >= 1)) {
      throw badRequest('invalid_field', `Expected \`${field}.${key}\` to be a positive integer or null (no limit), got ${describeValue(limit)}`, { field: `${field}.${key}` });
    }
    retention[key as keyof Retention] = limit as number | null;
  }
  return retention;
}

/** A path or query id: a positive integer in range, or a 400 naming the parameter. */
export function parseId(raw: string | undefined, name: string): number {
  if (raw === undefined || !/^[1-9]\d{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw badRequest('invalid_id', `Expected \`${name}\` to be a positive integer, got ${describeValue(raw)}`, { field: name });
  }
  return Number(raw);
}

/** A query parameter that must be a non-negative integer, within bounds. */
export function parseQueryInteger(raw: unknown, name: string, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) > max) {
    throw badRequest('invalid_query', `Expected \`${name}\` to be a non-negative integer of at most ${max}, got ${describeValue(raw)}`, { field: name });
  }
  return Number(raw);
}
