import { formsOf, MASK, MIN_MASKED_BYTES } from './maskForms.js';

/** GitHub's workflow command: a line `::add-mask::VALUE` masks VALUE from then on. */
export const ADD_MASK = '::add-mask::';
const ADD_MASK_BYTES = Buffer.from(ADD_MASK);
/** What a command after a newline starts with: ending in a rare letter, so the search skips ahead quickly (":" is common). */
const COMMAND_NEEDLE = Buffer.from(`\n${ADD_MASK.slice(0, -2)}`);
const MASK_BYTES = Buffer.from(MASK);
const NEWLINE = 0x0a;
/** A command line longer than this without its newline is taken as it is. */
const MAX_COMMAND_BYTES = 64 * 1024;

/** What a call may keep back: more output follows (`more`), a flush timer fired (`timer`), or the output ended (`end`). */
type Mode = 'more' | 'timer' | 'end';

/** Forms are found through their 4-byte pieces (q-grams), looked up in a table of this many bits. */
const GRAM = 4;
const TABLE_BITS = 20;
/** Beginnings of forms up to this long are kept in a set, to tell at once whether an output's end may become one. */
const PREFIX_BYTES = 64;

/** A form, and where in it a q-gram of its index sits. */
interface GramEntry {
  form: Buffer;
  offset: number;
}

const gramAt = (bytes: Buffer, at: number) => (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
const slotOf = (gram: number) => Math.imul(gram, 0x9e3779b1) >>> (32 - TABLE_BITS);

/**
 * Every form's places in a text, found without looking at every byte: each form is at least
 * `shortest` bytes long, so an occurrence holds one of the sampled places (every
 * `shortest − GRAM + 1` bytes) within its first `shortest` bytes; the q-grams of those first
 * bytes are in a table, and only a place whose q-gram is there is compared with the forms it names.
 */
class FormIndex {
  readonly longest: number;
  private readonly step: number;
  private readonly table = new Uint8Array(1 << TABLE_BITS);
  private readonly grams = new Map<number, GramEntry[]>();
  private readonly byFirstByte = new Map<number, Buffer[]>();
  private readonly prefixes = new Set<string>();

  constructor(readonly forms: readonly Buffer[]) {
    const shortest = Math.min(...forms.map((form) => form.length));
    this.longest = Math.max(0, ...forms.map((form) => form.length));
    this.step = forms.length === 0 ? 1 : shortest - GRAM + 1;
    for (const form of forms) {
      for (let offset = 0; offset + GRAM <= shortest; offset++) {
        const gram = gramAt(form, offset);
        this.table[slotOf(gram)] = 1;
        const entries = this.grams.get(gram) ?? [];
        entries.push({ form, offset });
        this.grams.set(gram, entries);
      }
      for (let length = 1; length < form.length && length <= PREFIX_BYTES; length++) this.prefixes.add(form.toString('latin1', 0, length));
      const first = this.byFirstByte.get(form[0]) ?? [];
      first.push(form);
      this.byFirstByte.set(form[0], first);
    }
  }

  /** Each place at or after `from` where a form starts, with the longest form there, in order. */
  find(text: Buffer, from: number): [start: number, length: number][] {
    const found = new Map<number, number>();
    if (this.forms.length === 0) return [];
    const { table, step } = this;
    for (let at = from; at + GRAM <= text.length; at += step) {
      const gram = (text[at] | (text[at + 1] << 8) | (text[at + 2] << 16) | (text[at + 3] << 24)) >>> 0;
      if (table[Math.imul(gram, 0x9e3779b1) >>> (32 - TABLE_BITS)] === 0) continue;
      for (const { form, offset } of this.grams.get(gram) ?? []) {
        const start = at - offset;
        if (start < from || start + form.length > text.length || form.length <= (found.get(start) ?? 0)) continue;
        if (text.compare(form, 0, form.length, start, start + form.length) === 0) found.set(start, form.length);
      }
    }
    return [...found].sort((a, b) => a[0] - b[0]);
  }

  /** Could a form longer than what is there start at `at`? */
  mayStartAt(text: Buffer, at: number): boolean {
    const rest = text.length - at;
    if (!this.prefixes.has(text.toString('latin1', at, at + Math.min(rest, PREFIX_BYTES)))) return false;
    if (rest < PREFIX_BYTES) return true;
    return (this.byFirstByte.get(text[at]) ?? []).some((form) => form.length > rest && form.compare(text, at, text.length, 0, rest) === 0);
  }
}

/**
 * Masks secrets in a stream of output as it passes: each form of each value (maskForms.ts) is
 * replaced by `[MASKED]`, the longest one at the leftmost place first, exactly as one replace over
 * the whole output would do. Output is matched as bytes, so a multi-byte character split across
 * writes is no different from any other split.
 *
 * A value split across writes is still masked: only the end of what came so far that could still
 * become a form (at most the longest form's length − 1 bytes) is kept back, until more comes or
 * the caller's flush timer fires. A line `::add-mask::VALUE` adds VALUE (and its forms) from then
 * on, and is itself written as `::add-mask::[MASKED]`; such a line is kept back until its newline.
 */
export class Masker {
  private readonly values = new Set<string>();
  private index!: FormIndex;
  /** what is kept back */
  private held: Buffer = Buffer.alloc(0);
  /** whether the first byte of what is kept back (or of what comes next) starts a line */
  private atLineStart = true;

  constructor(values: Iterable<string> = []) {
    for (const value of values) this.values.add(value);
    this.rebuild();
  }

  /** Masks `value` (and its forms) from now on; false (nothing changes) when it is too short to mask. */
  addValue(value: string): boolean {
    if (Buffer.byteLength(value) < MIN_MASKED_BYTES) return false;
    if (!this.values.has(value)) {
      this.values.add(value);
      this.rebuild();
    }
    return true;
  }

  /** The runner wrote a line of its own (ending in a newline): what comes next starts a line. */
  startLine(): void {
    if (this.held.length === 0) this.atLineStart = true;
  }

  get heldBytes(): number {
    return this.held.length;
  }

  /** The part of `chunk` (after what was kept back) that can be written now, masked. */
  push(chunk: Buffer): Buffer {
    return this.process(this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]), 'more');
  }

  /** What is kept back, masked, except an unfinished `::add-mask::` line (the flush timer). */
  flush(): Buffer {
    return this.process(this.held, 'timer');
  }

  /** Everything kept back, masked: the output has ended. */
  end(): Buffer {
    return this.process(this.held, 'end');
  }

  /** A whole text (the runner's own lines, a step's reason for failing) with every form masked. */
  maskText(text: string): string {
    if (this.index.forms.length === 0) return text;
    const bytes = Buffer.from(text, 'utf8');
    const parts: Buffer[] = [];
    let pos = 0;
    for (const [start, length] of this.index.find(bytes, 0)) {
      if (start < pos) continue;
      parts.push(bytes.subarray(pos, start), MASK_BYTES);
      pos = start + length;
    }
    parts.push(bytes.subarray(pos));
    return Buffer.concat(parts).toString('utf8');
  }

  private rebuild(): void {
    const forms = new Set([...this.values].flatMap(formsOf));
    this.index = new FormIndex([...forms].map((form) => Buffer.from(form, 'latin1')));
  }

  private isLineStart(text: Buffer, at: number): boolean {
    return at === 0 ? this.atLineStart : text[at - 1] === NEWLINE;
  }

  /** The first `::add-mask::` at a line start, at or after `from`; -1 if none. */
  private nextCommand(text: Buffer, from: number): number {
    const isCommand = (at: number) => at + ADD_MASK_BYTES.length <= text.length && text.compare(ADD_MASK_BYTES, 0, ADD_MASK_BYTES.length, at, at + ADD_MASK_BYTES.length) === 0;
    if (from === 0 && this.atLineStart && isCommand(0)) return 0;
    for (let at = text.indexOf(COMMAND_NEEDLE, Math.max(0, from - 1)); at !== -1; at = text.indexOf(COMMAND_NEEDLE, at + 1)) {
      if (isCommand(at + 1)) return at + 1;
    }
    return -1;
  }

  /** The first place at or after `from` where the decision waits for more output (-1: none). */
  private firstPending(text: Buffer, from: number, mode: Mode): number {
    if (mode === 'end') return -1;
    const window = Math.max(this.index.longest, ADD_MASK_BYTES.length) - 1;
    for (let at = Math.max(from, text.length - window); at < text.length; at++) {
      const rest = text.length - at;
      if (mode === 'more' && this.index.mayStartAt(text, at)) return at;
      if (rest < ADD_MASK_BYTES.length && this.isLineStart(text, at) && ADD_MASK_BYTES.compare(text, at, text.length, 0, rest) === 0) return at;
    }
    return -1;
  }

  /** Masks `text` (what was kept back and what came); keeps back what must wait; returns the rest. */
  private process(text: Buffer, mode: Mode): Buffer {
    if (text.length === 0) return text;
    const parts: Buffer[] = [];
    let pos = 0;
    let stop = text.length;
    scan: for (;;) {
      const found = this.index.find(text, pos);
      let next = 0;
      let command = this.nextCommand(text, pos);
      let pending = this.firstPending(text, pos, mode);
      for (;;) {
        while (next < found.length && found[next][0] < pos) next++;
        if (command !== -1 && command < pos) command = this.nextCommand(text, pos);
        if (pending !== -1 && pending < pos) pending = this.firstPending(text, pos, mode);
        const form = next < found.length ? found[next][0] : Infinity;
        const at = Math.min(form, command === -1 ? Infinity : command);
        if (pending !== -1 && pending <= at) {
          stop = pending;
          break scan;
        }
        if (at === Infinity) break scan;
        parts.push(text.subarray(pos, at));
        pos = at;
        if (at === command) {
          // A command: whole once its newline has come (or at the end, or too long to wait for).
          const newline = text.indexOf(NEWLINE, at);
          if (newline === -1 && mode !== 'end' && text.length - at < MAX_COMMAND_BYTES) {
            stop = at;
            break scan;
          }
          const end = newline === -1 ? text.length : newline + 1;
          const line = text.subarray(at, end);
          const body = line.subarray(0, line.length - (line.at(-1) === NEWLINE ? (line.at(-2) === 0x0d ? 2 : 1) : 0));
          const value = body.subarray(ADD_MASK_BYTES.length).toString('utf8').trim();
          parts.push(value === '' ? line : Buffer.concat([ADD_MASK_BYTES, MASK_BYTES, line.subarray(body.length)]));
          pos = end;
          if (value !== '' && this.addValue(value)) continue scan; // the new forms from here on
          continue;
        }
        parts.push(MASK_BYTES);
        pos = found[next][0] + found[next][1];
      }
    }
    parts.push(text.subarray(pos, stop));
    this.atLineStart = stop === 0 ? this.atLineStart : text[stop - 1] === NEWLINE;
    this.held = Buffer.from(text.subarray(stop)); // a copy: the caller's buffer is theirs again
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }
}
