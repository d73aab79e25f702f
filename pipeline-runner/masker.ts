import { formsOf, MASK, MIN_MASKED_BYTES } from './maskForms.js';

/** GitHub's workflow command: a line `::add-mask::VALUE` masks VALUE from then on. */
export const ADD_MASK = '::add-mask::';
const ADD_MASK_BYTES = Buffer.from(ADD_MASK);
const MASK_BYTES = Buffer.from(MASK);
const EMPTY = Buffer.alloc(0);
const COLON = 0x3a;
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

const gramAt = (bytes: Buffer, at: number) => bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
const slotOf = (gram: number) => Math.imul(gram, 0x9e3779b1) >>> (32 - TABLE_BITS);

/** What a scan found: each place a form starts (with the longest form there), and each `::add-mask::`, in order. */
interface Found {
  forms: [start: number, length: number][];
  commands: number[];
}

/**
 * Every form's places in a text (and every `::add-mask::`), found without looking at every byte:
 * each form is at least `shortest` bytes long, so an occurrence holds one of the sampled places
 * (every `shortest − GRAM + 1` bytes) within its first `shortest` bytes; the q-grams of those
 * first bytes are in a table, and only a place whose q-gram is there is compared with the forms it
 * names.
 */
class FormIndex {
  readonly longest: number;
  private readonly step: number;
  private readonly table = new Uint8Array(1 << TABLE_BITS);
  private readonly grams = new Map<number, GramEntry[]>();
  private readonly byFirstByte = new Map<number, Buffer[]>();
  /** the forms' first bytes and first two bytes: most places are ruled out by these alone */
  private readonly firsts = new Uint8Array(256);
  private readonly pairs = new Uint8Array(65536);
  private readonly prefixes = new Set<string>();

  constructor(readonly forms: readonly Buffer[]) {
    const indexed = [...forms, ADD_MASK_BYTES];
    const shortest = Math.min(...indexed.map((form) => form.length));
    this.longest = Math.max(0, ...forms.map((form) => form.length));
    this.step = shortest - GRAM + 1;
    for (const form of indexed) {
      for (let offset = 0; offset + GRAM <= shortest; offset++) {
        const gram = gramAt(form, offset);
        this.table[slotOf(gram)] = 1;
        const entries = this.grams.get(gram) ?? [];
        entries.push({ form, offset });
        this.grams.set(gram, entries);
      }
    }
    for (const form of forms) {
      this.firsts[form[0]] = 1;
      this.pairs[form[0] | (form[1] << 8)] = 1;
      for (let length = 1; length < form.length && length <= PREFIX_BYTES; length++) this.prefixes.add(form.toString('latin1', 0, length));
      const first = this.byFirstByte.get(form[0]) ?? [];
      first.push(form);
      this.byFirstByte.set(form[0], first);
    }
  }

  /** Each place at or after `from` where a form (or a command) starts, in order. */
  find(text: Buffer, from: number): Found {
    const forms = new Map<number, number>();
    const commands: number[] = [];
    const { table, step } = this;
    for (let at = from; at + GRAM <= text.length; at += step) {
      const gram = text[at] | (text[at + 1] << 8) | (text[at + 2] << 16) | (text[at + 3] << 24);
      if (table[Math.imul(gram, 0x9e3779b1) >>> (32 - TABLE_BITS)] === 0) continue;
      for (const { form, offset } of this.grams.get(gram) ?? []) {
        const start = at - offset;
        if (start < from || start + form.length > text.length) continue;
        if (form === ADD_MASK_BYTES) {
          if (text.compare(form, 0, form.length, start, start + form.length) === 0) commands.push(start);
        } else if (form.length > (forms.get(start) ?? 0) && text.compare(form, 0, form.length, start, start + form.length) === 0) {
          forms.set(start, form.length);
        }
      }
    }
    return { forms: [...forms].sort((a, b) => a[0] - b[0]), commands: commands.sort((a, b) => a - b) };
  }

  /** Could a form longer than what is there start at `at`? */
  mayStartAt(text: Buffer, at: number): boolean {
    const rest = text.length - at;
    if (rest === 1 ? this.firsts[text[at]] === 0 : this.pairs[text[at] | (text[at + 1] << 8)] === 0) return false;
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
  private held: Buffer = EMPTY;
  /** whether what is kept back may hold the start of a command (which waits for its newline, however far) */
  private heldCommand = false;
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

  /**
   * The part of `chunk` (after what was kept back) that can be written now, masked, in parts (to be
   * written in order). What was kept back is joined to the start of a large chunk only, not copied
   * in front of all of it: what it may become is decided within the longest form's length.
   */
  push(chunk: Buffer): Buffer[] {
    const held = this.held.length;
    if (held === 0) return this.process(chunk, 'more');
    const reach = Math.max(this.index.longest, ADD_MASK_BYTES.length);
    if (this.heldCommand || chunk.length <= 2 * reach) return this.process(Buffer.concat([this.held, chunk]), 'more');
    // What waits at the end of the joint is shorter than `reach`, so it starts past what was held
    // (a command could wait longer: then `heldCommand`); the rest of the chunk goes on from there.
    const head = this.process(Buffer.concat([this.held, chunk.subarray(0, reach)]), 'more');
    const resume = reach - this.held.length;
    this.held = EMPTY;
    return [...head, ...this.process(chunk.subarray(resume), 'more')];
  }

  /** What is kept back, masked, except an unfinished `::add-mask::` line (the flush timer). */
  flush(): Buffer[] {
    return this.process(this.held, 'timer');
  }

  /** Everything kept back, masked: the output has ended. */
  end(): Buffer[] {
    return this.process(this.held, 'end');
  }

  /** A whole text (the runner's own lines, a step's reason for failing) with every form masked. */
  maskText(text: string): string {
    if (this.index.forms.length === 0) return text;
    const bytes = Buffer.from(text, 'utf8');
    const parts: Buffer[] = [];
    let pos = 0;
    for (const [start, length] of this.index.find(bytes, 0).forms) {
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
  private process(text: Buffer, mode: Mode): Buffer[] {
    if (text.length === 0) return [];
    const parts: Buffer[] = [];
    let pos = 0;
    let stop = text.length;
    scan: for (;;) {
      const { forms: found, commands } = this.index.find(text, pos);
      let next = 0;
      let nextCommand = 0;
      let pending = this.firstPending(text, pos, mode);
      for (;;) {
        while (next < found.length && found[next][0] < pos) next++;
        while (nextCommand < commands.length && (commands[nextCommand] < pos || !this.isLineStart(text, commands[nextCommand]))) nextCommand++;
        if (pending !== -1 && pending < pos) pending = this.firstPending(text, pos, mode);
        const form = next < found.length ? found[next][0] : Infinity;
        const command = nextCommand < commands.length ? commands[nextCommand] : -1;
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
    this.held = stop === text.length ? EMPTY : Buffer.from(text.subarray(stop)); // a copy: the caller's buffer is theirs again
    this.heldCommand = this.held.includes(COLON);
    return parts.filter((part) => part.length > 0);
  }
}
