import type { Section, SectionDialect } from '../wire.js';

/** Bytes of a line looked at for a marker: a longer line is no marker (its name is cut). */
export const MAX_MARKER_BYTES = 4096;
/** Open sections nest at most this deep: a group opened deeper first closes the innermost (memory stays bounded). */
export const MAX_DEPTH = 32;
/** Names are cut to this many characters. */
const MAX_NAME_CHARS = 200;

/** What a marker did to a section; `at`: the offset whose line time stamps it; `markerTime`: the time the marker itself says (GitLab's). */
export interface SectionEvent {
  kind: 'open' | 'close' | 'change';
  section: Section;
  at: number;
  markerTime: number | null;
}

const NEWLINE = 0x0a;
const ESC = 0x1b;
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const STEP_HEADER = /^\[hub\] step \d+\/\d+: (.*)$/;
const GITHUB_GROUP = /^::group::(.*)$/;
const GITHUB_END = /^::endgroup::\s*$/;
const GITLAB = /\x1b\[0Ksection_(start|end):(\d+):([^\s[\r\x1b]+)(?:\[([^\]]*)\])?\r?(?:\x1b\[0K)?(.*)$/;
const BUILDKITE = /^(---|\+\+\+|~~~) (.*\S.*)$/;
const BUILDKITE_EXPAND = /^\^\^\^ \+\+\+\s*$/;
const SECTION_BYTES = Buffer.from('section_');

const cleanName = (text: string) => text.replace(ANSI, '').replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, MAX_NAME_CHARS);

/**
 * Finds the sections a log's own tools mark, over its bytes fed in any chunks: GitHub's
 * `::group::`/`::endgroup::`, GitLab's `section_start`/`section_end`, Buildkite's `---`, `+++`,
 * `~~~` and `^^^ +++`. Sections nest whatever their dialect (GitHub's own viewer cannot nest);
 * a Buildkite header closes the Buildkite section open at its level, as in Buildkite; the runner's
 * step header (`[hub] step i/n: NAME`) closes every section still open, at the header's start.
 * Keeps the open sections and at most MAX_MARKER_BYTES of the current line: never the log.
 */
export class SectionParser {
  private readonly stack: Section[] = [];
  private nextId = 1;
  private step: string | null = null;
  /** the last Buildkite section closed, for `^^^ +++` right after it */
  private lastBuildkite: Section | null = null;
  private lineStart: number;
  private readonly head = Buffer.alloc(MAX_MARKER_BYTES);
  private headLength = 0;
  /** bytes of the current line fed so far */
  private pendingBytes = 0;
  private lineTooLong = false;
  private events: SectionEvent[] = [];

  constructor(startOffset = 0) {
    this.lineStart = startOffset;
  }

  /** Where the next byte fed belongs. */
  get position(): number {
    return this.lineStart + this.pendingBytes;
  }

  /** The sections open now, outermost first. */
  get open(): readonly Section[] {
    return this.stack;
  }

  /** Feeds the bytes that follow everything fed so far; returns what their complete lines did. */
  push(chunk: Buffer): SectionEvent[] {
    let from = 0;
    while (from < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, from);
      const stop = newline === -1 ? chunk.length : newline;
      this.keep(chunk, from, stop);
      if (newline === -1) break;
      const end = this.lineStart + this.pendingBytes + 1;
      this.line(end);
      this.lineStart = end;
      this.pendingBytes = 0;
      this.headLength = 0;
      this.lineTooLong = false;
      from = newline + 1;
    }
    return this.take();
  }

  /** The log ended (all of it fed): a last line without newline counts, and what is open closes there. */
  end(): SectionEvent[] {
    const end = this.lineStart + this.pendingBytes;
    if (this.pendingBytes > 0) this.line(end);
    this.lineStart = end;
    this.pendingBytes = 0;
    this.headLength = 0;
    this.closeFrom(0, end);
    return this.take();
  }

  private take(): SectionEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  private keep(chunk: Buffer, from: number, stop: number): void {
    const length = stop - from;
    const room = MAX_MARKER_BYTES - this.headLength;
    if (length > room) this.lineTooLong = true;
    if (room > 0) this.headLength += chunk.copy(this.head, this.headLength, from, from + Math.min(room, length));
    this.pendingBytes += length;
  }

  /** One complete line: [lineStart, end), its newline included (if any). */
  private line(end: number): void {
    if (this.lineTooLong || this.headLength === 0) return;
    const first = this.head[0];
    const hasEsc = this.head.indexOf(ESC, 0) !== -1 && this.head.subarray(0, this.headLength).indexOf(SECTION_BYTES) !== -1;
    // Most lines are no marker: they are not decoded.
    if (!hasEsc && first !== 0x3a && first !== 0x2d && first !== 0x2b && first !== 0x7e && first !== 0x5e && first !== 0x5b) return;
    let text = this.head.toString('utf8', 0, this.headLength);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    const start = this.lineStart;
    let match: RegExpExecArray | null;
    if ((match = STEP_HEADER.exec(text))) {
      this.closeFrom(0, start);
      this.step = match[1];
      this.lastBuildkite = null;
    } else if ((match = GITHUB_GROUP.exec(text))) {
      this.openSection('github', cleanName(match[1]), null, start, end, false, false, null);
    } else if (GITHUB_END.test(text)) {
      this.closeMatching((section) => section.dialect === 'github', start, end, null);
    } else if (hasEsc && (match = GITLAB.exec(text))) {
      const [, kind, seconds, key, options, title] = match;
      const markerTime = Number(seconds) * 1000;
      if (kind === 'start') {
        const collapsed = /(?:^|,)\s*collapsed=true\s*(?:,|$)/.test(options ?? '');
        this.openSection('gitlab', cleanName(title ?? '') || key, key, start, end, collapsed, false, markerTime);
      } else {
        this.closeMatching((section) => section.dialect === 'gitlab' && section.key === key, start, end, markerTime);
      }
    } else if ((match = BUILDKITE.exec(text))) {
      const top = this.stack[this.stack.length - 1];
      if (top?.dialect === 'buildkite') this.closeFrom(this.stack.length - 1, start);
      this.openSection('buildkite', cleanName(match[2]), null, start, end, match[1] !== '+++', match[1] === '~~~', null);
    } else if (BUILDKITE_EXPAND.test(text)) {
      const target = [...this.stack].reverse().find((section) => section.dialect === 'buildkite') ?? this.lastBuildkite;
      if (target?.collapsed) {
        target.collapsed = false;
        this.events.push({ kind: 'change', section: { ...target }, at: end, markerTime: null });
      }
    }
  }

  private openSection(dialect: SectionDialect, name: string, key: string | null, start: number, headerEnd: number, collapsed: boolean, muted: boolean, markerTime: number | null): void {
    if (this.stack.length >= MAX_DEPTH) this.closeFrom(this.stack.length - 1, start);
    const parent = this.stack[this.stack.length - 1] ?? null;
    const section: Section = {
      id: this.nextId++,
      parent: parent?.id ?? null,
      depth: this.stack.length,
      step: this.step,
      name,
      dialect,
      key,
      start,
      header_end: headerEnd,
      end: null,
      started_at: null,
      ended_at: null,
      collapsed,
      muted,
    };
    this.stack.push(section);
    this.events.push({ kind: 'open', section: { ...section }, at: headerEnd, markerTime });
  }

  /** Closes the innermost open section that `matches` at the end of this line, and those inside it at its start. */
  private closeMatching(matches: (section: Section) => boolean, start: number, end: number, markerTime: number | null): void {
    for (let index = this.stack.length - 1; index >= 0; index--) {
      if (!matches(this.stack[index])) continue;
      this.closeFrom(index + 1, start);
      this.closeAt(this.stack.pop()!, end, markerTime);
      return;
    }
  }

  /** Closes the open sections from depth `depth` inwards at `offset`, innermost first. */
  private closeFrom(depth: number, offset: number): void {
    while (this.stack.length > depth) this.closeAt(this.stack.pop()!, offset, null);
  }

  private closeAt(section: Section, offset: number, markerTime: number | null): void {
    section.end = offset;
    if (section.dialect === 'buildkite') this.lastBuildkite = section;
    this.events.push({ kind: 'close', section: { ...section }, at: offset, markerTime });
  }
}
