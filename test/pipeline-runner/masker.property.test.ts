import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADD_MASK, Masker } from '../../pipeline-runner/masker.js';
import { formsOf, MASK, MIN_MASKED_BYTES } from '../../pipeline-runner/maskForms.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

/** Fixed seed, so a failure replays: FC_SEED=<seed printed by fast-check> reruns the same cases. */
const SEED = process.env.FC_SEED === undefined ? 0x5ec7 : Number(process.env.FC_SEED);
const runs = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });

/**
 * The reference: one pass over the whole output. At each place, a command line at a line start
 * (`::add-mask::VALUE`, whole line) adds VALUE from then on; else the longest form of a value known
 * so far that starts there is replaced by [MASKED]; else the byte is kept.
 */
function referenceMask(output: Buffer, initial: string[]): Buffer {
  const values = new Set(initial);
  let forms = [...values].flatMap(formsOf);
  const text = output.toString('latin1');
  let out = '';
  for (let i = 0; i < text.length; ) {
    if ((i === 0 || text[i - 1] === '\n') && text.startsWith(ADD_MASK, i)) {
      const newline = text.indexOf('\n', i);
      const end = newline === -1 ? text.length : newline + 1;
      const line = text.slice(i, end);
      const body = line.replace(/\r?\n$/, '');
      const value = Buffer.from(body.slice(ADD_MASK.length), 'latin1').toString('utf8').trim();
      out += value === '' ? line : ADD_MASK + MASK + line.slice(body.length);
      if (value !== '' && Buffer.byteLength(value) >= MIN_MASKED_BYTES && !values.has(value)) {
        values.add(value);
        forms = [...values].flatMap(formsOf);
      }
      i = end;
      continue;
    }
    let longest = 0;
    for (const form of forms) if (form.length > longest && text.startsWith(form, i)) longest = form.length;
    if (longest > 0) {
      out += MASK;
      i += longest;
    } else {
      out += text[i];
      i++;
    }
  }
  return Buffer.from(out, 'latin1');
}

/** Pushes `output` cut at `cuts` through one masker, then ends it. */
function streamMask(output: Buffer, secrets: string[], cuts: number[]): Buffer {
  const masker = new Masker(secrets);
  const parts: Buffer[] = [];
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (output.length + 1)))].sort((a, b) => a - b)) {
    parts.push(...masker.push(output.subarray(from, cut)));
    from = cut;
  }
  parts.push(...masker.push(output.subarray(from)), ...masker.end());
  return Buffer.concat(parts);
}

// ---- Inputs ----------------------------------------------------------------------------------

/** Multi-byte characters, regular-expression metacharacters, and what the encodings escape. */
const SECRET_CHARS = ['a', 'b', 'x', '0', '7', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\', '/', 'é', '日', '😀', ' ', '"', '<', '&', '%', '=', '-', '_', '\n', '\t', '\u2028'];
const secret = fc.array(fc.constantFrom(...SECRET_CHARS), { minLength: 2, maxLength: 24 }).map((chars) => chars.join(''))
  .filter((value) => Buffer.byteLength(value) >= MIN_MASKED_BYTES);

const TEXT_CHARS = ['a', 'b', 'x', ' ', '\n', '\r\n', '=', '"', '\\', '%', '日', '😀', ':', '::', '[', '.', '*'];
const noise = fc.array(fc.constantFrom(...TEXT_CHARS), { maxLength: 16 }).map((chars) => Buffer.from(chars.join('')));

const encodings: ((value: string, pad: Buffer) => Buffer)[] = [
  (value) => Buffer.from(value),
  (value) => Buffer.from(Buffer.from(value).toString('base64')),
  (value) => Buffer.from(Buffer.from(value).toString('base64url')),
  // inside a longer base64 text, at any alignment
  (value, pad) => Buffer.from(Buffer.concat([pad, Buffer.from(value), pad]).toString('base64')),
  (value) => Buffer.from(encodeURIComponent(value)),
  (value) => Buffer.from(JSON.stringify(value)),
  (value) => Buffer.from(JSON.stringify({ authorization: `Bearer ${value}` })),
  (value) => Buffer.from(JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)),
  (value) => Buffer.from(value).subarray(0, Math.max(1, Buffer.byteLength(value) - 1)), // a near miss
];

/** Output: noise, the secrets in their forms, and (sometimes) an ::add-mask:: line with a new value and its later uses. */
const scenario = fc.record({
  secrets: fc.array(secret, { minLength: 1, maxLength: 4 }),
  pieces: fc.array(fc.tuple(fc.nat(), fc.nat(encodings.length - 1), noise, fc.uint8Array({ maxLength: 2 })), { maxLength: 14 }),
  added: fc.option(fc.tuple(secret, fc.nat(14)), { nil: undefined }),
  cuts: fc.array(fc.nat(), { maxLength: 12 }),
  /** repeated: long outputs in few writes, where what is held back meets a large write */
  repeat: fc.integer({ min: 1, max: 30 }),
});

function outputOf({ secrets, pieces, added, repeat }: { secrets: string[]; pieces: [number, number, Buffer, Uint8Array][]; added?: [string, number]; repeat: number }): Buffer {
  const parts: Buffer[] = [];
  pieces.forEach(([which, encoding, text, pad], index) => {
    if (added && index === added[1] % Math.max(1, pieces.length)) parts.push(Buffer.from(`\n${ADD_MASK}${added[0].replace(/\n/g, ' ')}\n`));
    const value = added && index > added[1] % Math.max(1, pieces.length) && which % 3 === 0 ? added[0].replace(/\n/g, ' ') : secrets[which % secrets.length];
    parts.push(text, encodings[encoding](value, Buffer.from(pad)));
  });
  return Buffer.concat(Array.from({ length: repeat }, () => Buffer.concat(parts)));
}

// ---- Properties ------------------------------------------------------------------------------

test('streamed at any write split, the masked output equals one reference replace over the whole output', () => {
  fc.assert(fc.property(scenario, (input) => {
    const output = outputOf(input);
    const streamed = streamMask(output, input.secrets, input.cuts);
    const expected = referenceMask(output, input.secrets);
    assert.is(streamed.toString('latin1'), expected.toString('latin1'));
  }), runs(1500));
});

test('no secret survives in any form it was written in: value, base64, URL-encoded, JSON-escaped', () => {
  fc.assert(fc.property(scenario, (input) => {
    const output = outputOf(input);
    // Each [MASKED] cut out, so a form cannot be made of a mask's letters and the text beside it.
    const written = streamMask(output, input.secrets, input.cuts).toString('latin1').split(MASK).join('\0');
    for (const value of input.secrets) {
      for (const form of formsOf(value)) assert.not.ok(written.includes(form), `a form of ${JSON.stringify(value)} is in the output: ${JSON.stringify(form)}`);
    }
  }), runs(1500));
});

/** The value an `::add-mask::` line of the scenario adds, as the masker keeps it (null: none, or too short). */
function addedValue(added: [string, number] | undefined): string | null {
  const value = added?.[0].replace(/\n/g, ' ').trim() ?? '';
  return Buffer.byteLength(value) >= MIN_MASKED_BYTES ? value : null;
}

/**
 * The forms a step most often prints a value in, computed here with plain Node and not through
 * maskForms.ts, so an encoding the masker's list missed would show (as byte strings, like the output).
 */
function plainForms(value: string): string[] {
  const forms = [value, Buffer.from(value).toString('base64'), encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];
  return forms.map((form) => Buffer.from(form, 'utf8').toString('latin1'));
}

test('no secret survives as its raw, base64, URL-encoded or JSON-escaped text, by an encoder independent of the masker', () => {
  fc.assert(fc.property(scenario, (input) => {
    const output = outputOf(input);
    const written = streamMask(output, input.secrets, input.cuts).toString('latin1').split(MASK).join('\0');
    const check = (value: string, text: string) => {
      for (const form of plainForms(value)) assert.not.ok(text.includes(form), `${JSON.stringify(value)} is in the output as ${JSON.stringify(form)}`);
    };
    for (const value of input.secrets) check(value, written);
    // A value added by ::add-mask:: is masked from its line on (as the masker keeps it: trimmed).
    const added = addedValue(input.added);
    const command = written.indexOf(`${ADD_MASK}\0`);
    if (added !== null && command !== -1) check(added, written.slice(command));
  }), runs(1500));
});

/**
 * After every write, what the masker holds back is the raw end of what came so far (it holds input,
 * never output), and is at most the longest form's length − 1 bytes, or the start of an
 * `::add-mask::` line (at most its 12 bytes − 1 before its value comes), or a whole command line
 * waiting for its newline.
 */
test('after any write, the masker holds back at most the longest form\'s byte length − 1 bytes (or an ::add-mask:: line)', () => {
  fc.assert(fc.property(scenario, (input) => {
    const output = outputOf(input);
    const added = addedValue(input.added);
    const values = [...input.secrets, ...(added === null ? [] : [added])];
    const longest = Math.max(...values.flatMap(formsOf).map((form) => form.length));
    const masker = new Masker(input.secrets);
    const cuts = [...new Set(input.cuts.map((c) => c % (output.length + 1))), output.length].sort((a, b) => a - b);
    let from = 0;
    for (const cut of cuts) {
      masker.push(output.subarray(from, cut));
      from = cut;
      const held = masker.heldBytes;
      if (held <= longest - 1) continue;
      const tail = output.subarray(cut - held, cut).toString('latin1');
      const atLineStart = cut - held === 0 || output[cut - held - 1] === 0x0a;
      const command = atLineStart && (ADD_MASK.startsWith(tail) || (tail.startsWith(ADD_MASK) && !tail.includes('\n')));
      assert.ok(command, `${held} bytes held back (longest form ${longest} bytes): ${JSON.stringify(tail)}`);
    }
  }), runs(1500));
});

/** What a step without secrets prints: text, and pieces of `::add-mask::` lines, at line starts or not. */
const PLAIN_CHARS = ['a', ' ', '\n', '\r\n', ':', '::', '::add', '-mask::', '::add-mask::', 'hunter2-token', '日', '[', '='];

/** Where the first whole `::add-mask::` line that adds a value ends (Infinity: none). */
function firstAddedEnd(output: Buffer): number {
  let at = 0;
  for (const line of output.toString('latin1').split(/(?<=\n)/)) {
    at += line.length;
    const value = Buffer.from(line.slice(ADD_MASK.length), 'latin1').toString('utf8').trim();
    if (line.startsWith(ADD_MASK) && line.endsWith('\n') && Buffer.byteLength(value) >= MIN_MASKED_BYTES) return at;
  }
  return Infinity;
}

test('an empty masker (a project without secrets) holds back nothing but the start of an ::add-mask:: line, and changes nothing else', () => {
  const plain = fc.array(fc.constantFrom(...PLAIN_CHARS), { maxLength: 60 }).map((chars) => Buffer.from(chars.join('')));
  fc.assert(fc.property(plain, fc.array(fc.nat(), { maxLength: 12 }), (output, rawCuts) => {
    const masker = new Masker([]);
    const added = firstAddedEnd(output); // from there on, the masker is empty no more
    const parts: Buffer[] = [];
    const cuts = [...new Set(rawCuts.map((c) => c % (output.length + 1))), output.length].sort((a, b) => a - b);
    let from = 0;
    for (const cut of cuts) {
      parts.push(...masker.push(output.subarray(from, cut)));
      from = cut;
      const held = masker.heldBytes;
      if (held === 0 || cut - held >= added) continue;
      const tail = output.subarray(cut - held, cut).toString('latin1');
      const atLineStart = cut - held === 0 || output[cut - held - 1] === 0x0a;
      assert.ok(atLineStart && (ADD_MASK.startsWith(tail) || (tail.startsWith(ADD_MASK) && !tail.includes('\n'))), `held back: ${JSON.stringify(tail)}`);
    }
    parts.push(...masker.end());
    assert.is(Buffer.concat(parts).toString('latin1'), referenceMask(output, []).toString('latin1'));
  }), runs(1000));
});

test('a value split into single bytes is masked like one written whole', () => {
  fc.assert(fc.property(fc.array(secret, { minLength: 1, maxLength: 3 }), noise, (secrets, text) => {
    const output = Buffer.concat([text, ...secrets.map((value) => Buffer.from(`${value} ${Buffer.from(value).toString('base64')}\n`))]);
    const cuts = Array.from({ length: output.length }, (_, i) => i);
    assert.is(streamMask(output, secrets, cuts).toString('latin1'), referenceMask(output, secrets).toString('latin1'));
  }), runs(300));
});

test.run();
