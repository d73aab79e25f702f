import { z } from 'zod';

/**
 * Building blocks of the API's schemas. Each carries the description its error messages use
 * ("Expected `name` to be <description>, got …") and the OpenAPI document shows; `x-error-code`
 * overrides the error code of a field (an id in a query is `invalid_id`, as in a path).
 */
const CONTROL = /[\u0000-\u001f\u007f]/;

export const text = (max: number) =>
  z.string()
    .max(max)
    .refine((value) => value.trim() !== '' && !CONTROL.test(value) && value.isWellFormed())
    .describe(`a non-empty string of at most ${max} characters without control characters`);

export const positiveInteger = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).describe('a positive integer');

/** A whole number in a query string. */
export const queryInteger = (max: number) =>
  z.string().regex(/^\d{1,16}$/).transform(Number).pipe(z.number().max(max)).describe(`a non-negative integer of at most ${max}`);

/** An id in a query string. */
export const queryId = z.string().regex(/^[1-9]\d{0,15}$/).transform(Number).pipe(z.number().max(Number.MAX_SAFE_INTEGER))
  .describe('a positive integer').meta({ 'x-error-code': 'invalid_id' });

export const SETTING_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** Settings become environment variables (HUB_SETTING_<NAME>): names must be safe variable names. */
export const settings = z.record(
  z.string().regex(SETTING_NAME).describe('letters, digits and "_" starting with a letter'),
  z.string().max(4096).refine((value) => !value.includes('\0') && value.isWellFormed()).describe('a string of at most 4096 characters'),
)
  .superRefine((value, ctx) => {
    const names = Object.keys(value);
    if (names.length > 100) ctx.addIssue({ code: 'custom', message: `Expected \`settings\` to have at most 100 entries, got ${names.length}`, params: { code: 'invalid_field' } });
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name.toUpperCase())) ctx.addIssue({ code: 'custom', path: [name], message: `Setting ${JSON.stringify(name)} in \`settings\` differs from another only by case`, params: { code: 'invalid_field' } });
      seen.add(name.toUpperCase());
    }
  })
  .describe('an object of string values, named with letters, digits and "_"');

const limit = positiveInteger.nullable().optional().describe('a positive integer or null (no limit)');

export const retention = z.strictObject({ runs: limit, days: limit, log_bytes: limit })
  .describe('an object with any of runs, days, log_bytes');
