import { badRequest, describeValue } from '../errors.js';

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
