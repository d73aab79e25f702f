import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HubError } from '../../server/errors.js';
import { DEFAULT_TAIL, MAX_TAIL, parseClientMessage, type ClientMessage } from '../../server/ws/protocol.js';

/** Fixed seed, so a failure replays: FC_SEED=<seed printed by fast-check> reruns the same cases. */
const SEED = process.env.FC_SEED === undefined ? 0x5eed : Number(process.env.FC_SEED);
if (!Number.isSafeInteger(SEED)) throw new Error(`FC_SEED must be an integer, got ${process.env.FC_SEED}`);
/** Bounded runs; the failing assertion goes into the report, which uvu prints (it does not print an error's cause). */
const runs = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });

const CODES = ['invalid_json', 'invalid_message', 'invalid_type', 'unknown_field', 'invalid_run_id', 'invalid_project_id', 'invalid_offset', 'invalid_tail', 'invalid_timestamps', 'invalid_sections'];
const FIELDS = ['type', 'run_id', 'project_id', 'offset', 'tail', 'timestamps', 'sections'];

/** Any UTF-16 code unit, lone surrogates and control characters included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));
const anyString = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
);

/** Values near the edges of what each field accepts, and of other types. */
const edgyNumber = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(-0, 0.5, 1.5, 1e300, -1e300, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, MAX_TAIL, MAX_TAIL + 1, Number.MIN_VALUE),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.double(),
);
const fieldValue = fc.oneof(
  fc.constantFrom('subscribe', 'unsubscribe', 'Subscribe', '', '1', 'constructor', '__proto__'),
  edgyNumber,
  fc.constantFrom(null, true, false, [], {}, [1], { run_id: 1 }),
  fc.jsonValue({ maxDepth: 2, stringUnit: codeUnit }),
  anyString,
);
const fieldName = fc.oneof(
  { arbitrary: fc.constantFrom(...FIELDS), weight: 6 },
  { arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'Type', 'run_id ', 'runId', 'path', ''), weight: 1 },
  { arbitrary: anyString, weight: 1 },
);
/** Objects shaped like client messages: mostly the real field names, values of any type. */
const messageLike = fc.dictionary(fieldName, fieldValue, { maxKeys: 6 }).map((message) => JSON.stringify(message));
/** The same as raw JSON text, with number spellings JSON.stringify never makes (1.0, 1e0, 1E400) and duplicate keys. */
const rawNumber = fc.constantFrom('1.0', '1e0', '-0', '0.0', '1E400', '-1E400', '10000.0', '10001e0', '9007199254740993', '1e-400', '01');
const rawMessage = fc
  .array(fc.tuple(fieldName, fc.oneof(rawNumber, fieldValue.map((value) => JSON.stringify(value) ?? 'null'))), { maxLength: 6 })
  .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`);

const anyText = fc.oneof(
  anyString,
  fc.json({ stringUnit: codeUnit }),
  fc.jsonValue({ stringUnit: 'binary' }).map((value) => JSON.stringify(value)),
  messageLike,
  rawMessage,
);

const isId = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

/** Parses `text`; a result must say what the text says, an error must be a protocol error (HubError, 400) with a documented code. */
function checkParse(text: string): void {
  let message: ClientMessage;
  try {
    message = parseClientMessage(text);
  } catch (error) {
    if (!(error instanceof HubError) || error.status !== 400) throw new Error(`threw ${(error as Error)?.constructor?.name}: ${String(error)}`);
    assert.ok(CODES.includes(error.code), `undocumented code ${error.code}`);
    assert.type(error.message, 'string');
    const { run_id: runId, project_id: projectId } = (error.details ?? {}) as { run_id?: unknown; project_id?: unknown };
    assert.ok(runId === undefined || isId(runId), 'run_id on the error is undefined or an id');
    assert.ok(projectId === undefined || isId(projectId), 'project_id on the error is undefined or an id');
    return;
  }
  const raw = JSON.parse(text);
  assert.is(message.type, raw.type);
  assert.ok(Object.keys(raw).every((key) => FIELDS.includes(key)), 'only known fields are accepted');
  if ('projectId' in message) {
    assert.equal(message, { type: raw.type, projectId: raw.project_id });
    assert.is(raw.run_id, undefined);
    assert.is(raw.offset, undefined);
    assert.is(raw.tail, undefined);
    assert.is(raw.timestamps, undefined);
    assert.is(raw.sections, undefined);
  } else if (message.type === 'unsubscribe') {
    assert.equal(message, { type: 'unsubscribe', runId: raw.run_id });
  } else {
    assert.ok(isId(message.runId));
    const startAt = raw.offset !== undefined ? { offset: raw.offset } : { tail: raw.tail ?? DEFAULT_TAIL };
    assert.equal(message, { type: 'subscribe', runId: raw.run_id, startAt, timestamps: raw.timestamps === true, sections: raw.sections === true });
    assert.ok(raw.timestamps === undefined || typeof raw.timestamps === 'boolean', 'timestamps is a boolean');
    assert.ok(raw.sections === undefined || typeof raw.sections === 'boolean', 'sections is a boolean');
    const count = 'offset' in startAt ? startAt.offset : startAt.tail;
    assert.ok(Number.isSafeInteger(count) && count >= 0, 'offset and tail are non-negative integers');
    assert.ok(!('tail' in startAt) || startAt.tail <= MAX_TAIL, 'tail is at most MAX_TAIL');
  }
}

/** A valid message on the wire, and what it must parse to. */
const id = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const pair = (wire: Record<string, unknown>, expected: ClientMessage): [Record<string, unknown>, ClientMessage] => [wire, expected];
const validMessage = fc.oneof(
  id.map((projectId) => pair({ type: 'subscribe', project_id: projectId }, { type: 'subscribe', projectId })),
  id.map((projectId) => pair({ type: 'unsubscribe', project_id: projectId }, { type: 'unsubscribe', projectId })),
  id.map((runId) => pair({ type: 'unsubscribe', run_id: runId }, { type: 'unsubscribe', runId })),
  id.map((runId) => pair({ type: 'subscribe', run_id: runId }, { type: 'subscribe', runId, startAt: { tail: DEFAULT_TAIL }, timestamps: false, sections: false })),
  fc.tuple(id, fc.integer({ min: 0, max: MAX_TAIL }), fc.boolean(), fc.boolean()).map(([runId, tail, timestamps, sections]) => pair({ type: 'subscribe', run_id: runId, tail, timestamps, sections }, { type: 'subscribe', runId, startAt: { tail }, timestamps, sections })),
  fc.tuple(id, fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))).map(([runId, offset]) =>
    pair({ type: 'subscribe', run_id: runId, offset }, { type: 'subscribe', runId, startAt: { offset }, timestamps: false, sections: false }),
  ),
);

/** Numbers on each side of every bound the fields have. */
const boundary = fc.constantFrom(-1, 0, 1, 1.5, MAX_TAIL, MAX_TAIL + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, Number.MAX_SAFE_INTEGER + 2);
/** A valid message with one to three fields set to values of any type, or removed: close to every branch. */
const nearValid = fc
  .tuple(
    validMessage.map(([wire]) => wire),
    fc.array(fc.tuple(fieldName, fc.option(fc.oneof(boundary, fieldValue), { nil: undefined, freq: 4 })), { minLength: 1, maxLength: 3 }),
  )
  .map(([wire, changes]) => {
    const message: Record<string, unknown> = { ...wire };
    for (const [key, value] of changes) {
      if (value === undefined) delete message[key];
      else Object.defineProperty(message, key, { value, enumerable: true, writable: true, configurable: true }); // own, even `__proto__`
    }
    return JSON.stringify(message);
  });

test('any text either parses to a message that says what the text says, or fails with a protocol error (HubError, 400) with a documented code', () => {
  fc.assert(fc.property(anyText, checkParse), runs(5000));
});

test('message-shaped JSON with the real field names and values of any type never fails with anything but a protocol error (HubError, 400)', () => {
  fc.assert(fc.property(fc.oneof(messageLike, rawMessage, nearValid), checkParse), runs(5000));
});

/** The same message with its keys in any order and any indentation. */
const validText = validMessage.chain(([wire, expected]) =>
  fc.tuple(fc.shuffledSubarray(Object.keys(wire), { minLength: Object.keys(wire).length }), fc.constantFrom(0, 1, '\t', ' \r\n ')).map(([keys, indent]) => {
    return [JSON.stringify(Object.fromEntries(keys.map((key) => [key, wire[key]])), null, indent), expected] as const;
  }),
);

test('every valid subscribe and unsubscribe message parses to exactly the expected ClientMessage', () => {
  fc.assert(
    fc.property(validText, ([text, expected]) => {
      assert.equal(parseClientMessage(text), expected);
    }),
    runs(5000),
  );
});

test.run();
