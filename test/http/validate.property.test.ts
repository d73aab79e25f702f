import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HubError } from '../../server/errors.js';
import { z } from 'zod';
import { parseId, parseQueryInteger } from '../../server/http/validate.js';
import { queryInteger, SETTING_NAME, settings as settingsSchema, text } from '../../server/schemas/fields.js';
import { parseWith } from '../../server/schemas/parse.js';

type Body = Record<string, unknown>;

/** Fixed seed, so a failure replays: FC_SEED=<seed printed by fast-check> reruns the same cases. */
const SEED = process.env.FC_SEED === undefined ? 0x5eed : Number(process.env.FC_SEED);
if (!Number.isSafeInteger(SEED)) throw new Error(`FC_SEED must be an integer, got ${process.env.FC_SEED}`);
/** Bounded runs; the failing assertion goes into the report, which uvu prints (it does not print an error's cause). */
const runs = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });

/**
 * Runs a helper: returns its value, or undefined after checking that it threw a HubError 400 with
 * a string code, one of `codes`, and `details.field` satisfying `field` (when the helper names one).
 */
function outcome<T>(call: () => T, codes: string[], field?: (name: unknown) => boolean): { value: T } | undefined {
  try {
    return { value: call() };
  } catch (error) {
    if (!(error instanceof HubError)) throw new Error(`threw ${(error as Error)?.constructor?.name}: ${String(error)}`);
    assert.is(error.status, 400, `status of ${error.code}`);
    assert.type(error.code, 'string');
    assert.ok(codes.includes(error.code), `unexpected code ${error.code}`);
    assert.type(error.message, 'string');
    if (field) assert.ok(field(error.details?.field), `details.field ${JSON.stringify(error.details?.field)}`);
    return undefined;
  }
}

/** Any UTF-16 code unit, lone surrogates and control characters included (JSON can carry them all). */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));
const anyString = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 60, maxLength: 200 }),
  fc.constantFrom('', ' ', '\t', 'a\u0000b', '\u007f', '\ud800', '\udc00x', '😀', ' x ', '__proto__', 'constructor', 'toString'),
);
/** What a JSON body can hold. */
const jsonValue = fc.oneof(anyString, fc.jsonValue({ maxDepth: 2, stringUnit: codeUnit }), fc.constantFrom(null, true, 0, -0, 1.5, [], {}, ['a']));
const FIELD_NAMES = ['name', 'doc_root', 'pipeline', 'settings', 'scope', 'triggered_by', 'if_busy'];
const fieldName = fc.oneof({ arbitrary: fc.constantFrom(...FIELD_NAMES), weight: 3 }, { arbitrary: anyString, weight: 1 });
/**
 * The field a helper is asked to read: routes pass constant names. Names of Object.prototype members
 * are left out: the helpers read `body[field]` through the prototype, so readSettings({}, '__proto__')
 * returns {} (Object.prototype's entries) instead of undefined. No route asks for such a field.
 */
const readName = fieldName.filter((name) => !(name in Object.prototype));
/** A body as JSON.parse makes it (so `__proto__` is an ordinary own key). */
const body = fc.dictionary(fieldName, jsonValue, { maxKeys: 6 }).map((value) => JSON.parse(JSON.stringify(value)) as Body);

test('a strict schema accepts a body whose keys are all allowed, and otherwise names an unknown key in a 400 unknown_field', () => {
  fc.assert(
    fc.property(body, fc.subarray(FIELD_NAMES), (body, allowed) => {
      const schema = z.strictObject(Object.fromEntries(allowed.map((name) => [name, z.unknown().optional()])));
      const unknown = Object.keys(body).filter((key) => !allowed.includes(key));
      const result = outcome(() => parseWith(schema, body, 'body'), ['unknown_field'], (field) => unknown.some((key) => key.slice(0, 64) === field));
      assert.is(result !== undefined, unknown.length === 0, 'accepted exactly when every key is allowed');
    }),
    runs(2000),
  );
});

const CONTROL = /[\u0000-\u001f\u007f]/;
test('text(max) gives a non-empty, bounded, well-formed string without control characters, or a 400 naming the field', () => {
  fc.assert(
    fc.property(
      readName,
      fc.option(jsonValue, { nil: undefined }),
      fc.boolean(),
      fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(4096)),
      (field, value, required, max) => {
        const body: Body = {};
        if (value !== undefined) Object.defineProperty(body, field, { value, enumerable: true, configurable: true, writable: true });
        const schema = z.object({ [field]: required ? text(max) : text(max).optional() });
        const result = outcome(() => parseWith(schema, body, 'body') as Body, ['missing_field', 'invalid_field'], (name) => name === field);
        if (!result) return;
        const read = result.value[field];
        if (read === undefined) {
          assert.is(value, undefined);
          assert.not.ok(required, 'a required field is never missing');
          return;
        }
        assert.is(read, value, 'the value is returned as given');
        assert.type(read, 'string');
        const given = read as string;
        // counted in characters (code points), as JSON Schema's maxLength counts them
        assert.ok(given.trim() !== '' && [...given].length <= max, 'non-empty and at most max');
        assert.not.ok(CONTROL.test(given), 'no control characters');
        assert.ok(given.isWellFormed(), 'no lone surrogates');
      },
    ),
    runs(5000),
  );
});

/** Settings-shaped values: mostly valid names (some differing only by case), values of any JSON type. */
const settingName = fc.oneof(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/),
  fc.constantFrom('a', 'A', 'PATH', 'path', 'x'.repeat(64), 'x'.repeat(65), '_a', '1a', 'a-b', 'A=B;rm', '__proto__', 'constructor', 'toString'),
  anyString,
);
const settingValue = fc.oneof(
  { arbitrary: anyString, weight: 4 },
  { arbitrary: fc.constantFrom('x'.repeat(4096), 'x'.repeat(4097), 'a\u0000b', '\ud800'), weight: 1 },
  { arbitrary: jsonValue, weight: 1 },
);
const settings = fc.oneof(
  { arbitrary: fc.dictionary(settingName, settingValue, { maxKeys: 8 }).map((value) => JSON.parse(JSON.stringify(value)) as unknown), weight: 4 },
  { arbitrary: fc.dictionary(fc.stringMatching(/^[a-z]\d{0,3}$/), fc.constant('v'), { minKeys: 95, maxKeys: 105, noNullPrototype: true }).map((value) => value as unknown), weight: 1 },
  { arbitrary: jsonValue, weight: 1 },
);

test('the settings schema gives safe, case-unique names with bounded well-formed string values, or a 400 naming the field or the setting', () => {
  const schema = z.strictObject({ settings: settingsSchema.optional() });
  fc.assert(
    fc.property(fc.option(settings, { nil: undefined }), (value) => {
      const given: Body = value === undefined ? {} : { settings: value };
      const result = outcome(() => parseWith(schema, given, 'body'), ['invalid_field'], (name) => typeof name === 'string' && (name === 'settings' || name.startsWith('settings.')));
      if (!result) return;
      const read = result.value.settings;
      if (read === undefined) {
        assert.is(value, undefined);
        return;
      }
      assert.equal(read, value, 'the settings are returned as given');
      const names = Object.keys(read);
      assert.ok(names.length <= 100, 'at most 100 settings');
      assert.is(new Set(names.map((name) => name.toUpperCase())).size, names.length, 'names differ by more than case');
      for (const name of names) {
        assert.ok(SETTING_NAME.test(name), `safe name ${name}`);
        const setting = read[name];
        assert.type(setting, 'string');
        assert.ok(setting.length <= 4096 && !setting.includes('\0') && setting.isWellFormed(), `bounded, well-formed value for ${name}`);
      }
    }),
    runs(3000),
  );
});

/** Strings that look like numbers, and others. */
const numberish = fc.oneof(
  fc.integer({ min: 0, max: 1000 }).map(String),
  fc.tuple(fc.nat({ max: 18 }), fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat())).map(([zeros, value]) => `${'0'.repeat(zeros)}${value}`),
  fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }).map(String),
  fc.stringMatching(/^[-+ 0]?\d{0,17}(\.\d?)?(e\d)?\s?$/),
  fc.constantFrom('9007199254740991', '9007199254740992', '9999999999999999', '0', '00', '01', '1e3', '0x10', '١', '１', ' 1', '1 ', 'Infinity', 'NaN', ''),
  anyString,
);

test('parseId returns the positive safe integer the text spells in plain decimal, or a 400 invalid_id naming the parameter', () => {
  fc.assert(
    fc.property(fc.option(numberish, { nil: undefined }), anyString, (raw, name) => {
      const result = outcome(() => parseId(raw, name), ['invalid_id'], (field) => field === name);
      const valid = raw !== undefined && /^[1-9][0-9]*$/.test(raw) && BigInt(raw) <= BigInt(Number.MAX_SAFE_INTEGER);
      assert.is(result !== undefined, valid, `accepted exactly the positive safe integers: ${JSON.stringify(raw)}`);
      if (result) assert.is(String(result.value), raw);
    }),
    runs(5000),
  );
});

test('parseQueryInteger returns the fallback for a missing value, the decimal integer from 0 to max, or a 400 invalid_query naming the parameter', () => {
  const max = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(500, 10_000, Number.MAX_SAFE_INTEGER));
  /** What a query parameter can be: absent, a string, or an array of strings when repeated. */
  const raw = fc.oneof(fc.constant(undefined), numberish, fc.array(numberish, { minLength: 2, maxLength: 3 }), jsonValue);
  fc.assert(
    fc.property(raw, anyString, fc.nat(), max, (raw, name, fallback, max) => {
      const result = outcome(() => parseQueryInteger(raw, name, fallback, max), ['invalid_query'], (field) => field === name);
      if (raw === undefined) {
        assert.equal(result, { value: fallback });
        return;
      }
      // At most 16 digits, leading zeros included: "0000000000000001" is 1, "00000000000000001" is a 400.
      const valid = typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw) && BigInt(raw) <= BigInt(max);
      assert.is(result !== undefined, valid, `accepted exactly the decimal integers from 0 to ${max}: ${JSON.stringify(raw)}`);
      if (result) assert.is(BigInt(result.value), BigInt(raw as string));
    }),
    runs(5000),
  );
});

test('queryInteger(max) in a query schema: the decimal integer from 0 to max, or a 400 invalid_query naming the parameter', () => {
  const max = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(500, 10_000, Number.MAX_SAFE_INTEGER));
  const raw = fc.oneof(numberish, fc.array(numberish, { minLength: 2, maxLength: 3 }), jsonValue);
  fc.assert(
    fc.property(raw, max, (raw, max) => {
      const result = outcome(() => parseWith(z.object({ n: queryInteger(max) }), { n: raw }, 'query'), ['invalid_query'], (field) => field === 'n');
      const valid = typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw) && BigInt(raw) <= BigInt(max);
      assert.is(result !== undefined, valid, `accepted exactly the decimal integers from 0 to ${max}: ${JSON.stringify(raw)}`);
      if (result) assert.is(BigInt(result.value.n), BigInt(raw as string));
    }),
    runs(5000),
  );
});

test.run();
