import { formsOf, MASK, MIN_MASKED_BYTES } from './maskForms.js';

/** GitHub's workflow command: a line `::add-mask::VALUE` masks VALUE from then on. */
export const ADD_MASK = '::add-mask::';
/** A command line longer than this without its newline is taken as it is. */
const MAX_COMMAND_BYTES = 64 * 1024;

/** What a call may keep back: more output follows (`more`), a flush timer fired (`timer`), or the output ended (`end`). */
type Mode = 'more' | 'timer' | 'end';

const escapeChar = (code: number) => (/[A-Za-z0-9]/.test(String.fromCharCode(code)) ? String.fromCharCode(code) : `\\x${code.toString(16).padStart(2, '0')}`);

interface TrieNode {
  children: Map<number, TrieNode>;
  end: boolean;
}

/**
 * One regular expression matching the longest form at a position: the forms as a trie (so the
 * engine follows one branch per character, not every form), where each ending is optional after
 * its longer continuations (greedy `?` tries them first).
 */
function trieSource(forms: readonly string[]): string {
  const root: TrieNode = { children: new Map(), end: false };
  for (const form of forms) {
    let node = root;
    for (let i = 0; i < form.length; i++) {
      const code = form.charCodeAt(i);
      let next = node.children.get(code);
      if (!next) node.children.set(code, (next = { children: new Map(), end: false }));
      node = next;
    }
    node.end = true;
  }
  const sourceOf = (node: TrieNode): string => {
    const branches: string[] = [];
    for (const [code, start] of node.children) {
      // A chain of single children is one literal (no recursion per character).
      let literal = escapeChar(code);
      let child = start;
      while (!child.end && child.children.size === 1) {
        const [[nextCode, next]] = child.children;
        literal += escapeChar(nextCode);
        child = next;
      }
      const rest = child.children.size === 0 ? '' : sourceOf(child);
      branches.push(literal + (child.end && rest ? `(?:${rest})?` : rest));
    }
    return branches.length === 1 ? branches[0] : `(?:${branches.join('|')})`;
  };
  return root.children.size === 0 ? '(?!)' : sourceOf(root);
}

/**
 * Masks secrets in a stream of output as it passes: each form of each value (maskForms.ts) is
 * replaced by `[MASKED]`, the longest one at the leftmost place first, exactly as one replace over
 * the whole output would do. Output is matched as bytes (latin1 strings, a character per byte), so
 * a multi-byte character split across writes is no different from any other split.
 *
 * A value split across writes is still masked: only the end of what came so far that could still
 * become a form (at most the longest form's length − 1 bytes) is kept back, until more comes or
 * the caller's flush timer fires. A line `::add-mask::VALUE` adds VALUE (and its forms) from then
 * on, and is itself written as `::add-mask::[MASKED]`; such a line is kept back until its newline.
 */
export class Masker {
  private readonly values = new Set<string>();
  private forms: string[] = [];
  private longest = 0;
  private byFirstByte = new Map<number, string[]>();
  private scanner!: RegExp;
  private formsOnly!: RegExp;
  /** what is kept back, as bytes (latin1) */
  private held = '';
  /** whether what comes next starts a line */
  private atLineStart = true;

  constructor(values: Iterable<string> = []) {
    for (const value of values) this.values.add(value);
    this.rebuild();
  }

  /** Masks `value` (and its forms) from now on; false (nothing changes) when it is too short to mask. */
  addValue(value: string): boolean {
    if (Buffer.byteLength(value) < MIN_MASKED_BYTES) return false;
    if (this.values.has(value)) return true;
    this.values.add(value);
    this.rebuild();
    return true;
  }

  /** The runner wrote a line of its own (ending in a newline): what comes next starts a line. */
  startLine(): void {
    if (this.held === '') this.atLineStart = true;
  }

  get heldBytes(): number {
    return this.held.length;
  }

  /** The part of `chunk` (after what was kept back) that can be written now, masked. */
  push(chunk: Buffer): Buffer {
    if (this.held === '' && this.forms.length === 0 && !chunk.includes(':')) {
      // nothing to mask and no command possible: as it is
      this.atLineStart = chunk.length === 0 ? this.atLineStart : chunk[chunk.length - 1] === 0x0a;
      return chunk;
    }
    return Buffer.from(this.process(this.held + chunk.toString('latin1'), 'more'), 'latin1');
  }

  /** What is kept back, masked, except an unfinished `::add-mask::` line (the flush timer). */
  flush(): Buffer {
    return Buffer.from(this.process(this.held, 'timer'), 'latin1');
  }

  /** Everything kept back, masked: the output has ended. */
  end(): Buffer {
    return Buffer.from(this.process(this.held, 'end'), 'latin1');
  }

  /** A whole text (the runner's own lines, a step's reason for failing) with every form masked. */
  maskText(text: string): string {
    if (this.forms.length === 0) return text;
    return Buffer.from(Buffer.from(text, 'utf8').toString('latin1').replace(this.formsOnly, MASK), 'latin1').toString('utf8');
  }

  private rebuild(): void {
    this.forms = [...new Set([...this.values].flatMap(formsOf))];
    this.longest = Math.max(0, ...this.forms.map((form) => form.length));
    this.byFirstByte = new Map();
    for (const form of this.forms) {
      const first = form.charCodeAt(0);
      this.byFirstByte.set(first, [...(this.byFirstByte.get(first) ?? []), form]);
    }
    const trie = trieSource(this.forms);
    // A command at a line start wins over a form at the same place; the text scanned starts with a
    // sentinel character ("\n" at a line start) so that the look-behind sees its first position right.
    this.scanner = new RegExp(`(?<=\\n)${ADD_MASK}[^\\n]*\\n?|${trie}`, 'g');
    this.formsOnly = new RegExp(trie, 'g');
  }

  /** Could a form (longer than what is there) start at `at`, given the text up to its end? */
  private formMayStart(text: string, at: number): boolean {
    const candidates = this.byFirstByte.get(text.charCodeAt(at));
    if (!candidates) return false;
    const rest = text.length - at;
    const tail = text.slice(at);
    return candidates.some((form) => form.length > rest && form.startsWith(tail));
  }

  /** Could an `::add-mask::` command start at `at` (a line start), given the text up to its end? */
  private commandMayStart(text: string, at: number): boolean {
    return text.charCodeAt(at - 1) === 0x0a && text.length - at < ADD_MASK.length && ADD_MASK.startsWith(text.slice(at));
  }

  /** The first place at or after `from` (and before `before`) where the decision has to wait for more output. */
  private firstPending(text: string, from: number, before: number, mode: Mode): number {
    if (mode === 'end') return -1;
    const window = Math.max(this.longest, ADD_MASK.length) - 1;
    for (let at = Math.max(from, text.length - window); at < before; at++) {
      if ((mode === 'more' && this.formMayStart(text, at)) || this.commandMayStart(text, at)) return at;
    }
    return -1;
  }

  /** Masks `body` (what was kept back and what came); keeps back what must wait; returns the rest. */
  private process(body: string, mode: Mode): string {
    if (body === '') return '';
    const text = (this.atLineStart ? '\n' : ' ') + body; // the sentinel (see rebuild)
    let out = '';
    let pos = 1;
    let stop = text.length;
    for (;;) {
      this.scanner.lastIndex = pos;
      const match = this.scanner.exec(text);
      const at = match ? match.index : text.length;
      const pending = this.firstPending(text, pos, Math.min(at + 1, text.length), mode);
      if (pending !== -1) {
        stop = pending;
        break;
      }
      if (!match) break;
      const found = match[0];
      out += text.slice(pos, at);
      pos = at + found.length;
      if (!found.startsWith(ADD_MASK) || text.charCodeAt(at - 1) !== 0x0a) {
        out += MASK;
        continue;
      }
      // A command: whole once its newline has come (or at the end, or when too long to wait for).
      if (!found.endsWith('\n') && mode !== 'end' && found.length < MAX_COMMAND_BYTES) {
        stop = at;
        break;
      }
      const line = found.replace(/\r?\n$/, '');
      const value = Buffer.from(line.slice(ADD_MASK.length), 'latin1').toString('utf8').trim();
      out += value === '' ? found : `${ADD_MASK}${MASK}${found.slice(line.length)}`;
      if (value !== '') this.addValue(value);
    }
    out += text.slice(pos, stop);
    this.held = text.slice(stop);
    const last = stop > 0 ? text.charCodeAt(stop - 1) : 0x0a;
    this.atLineStart = last === 0x0a;
    return out;
  }
}
