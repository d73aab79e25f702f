/** Bytes of a string as UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** At most this many lines, or characters, are kept while following; the oldest go first. */
export const MAX_LINES = 200_000;
export const MAX_CHARS = 64 * 1024 * 1024;

/**
 * The lines a log view holds: a contiguous range of the log, [firstOffset, next). Offsets are exact
 * where each batch from the server starts (its `offset`); a line's own offset is counted from the
 * batch start before it (exact unless a line stands for bytes that were not UTF-8). While following,
 * the oldest batches are dropped past MAX_LINES or MAX_CHARS; they can be loaded again by offset.
 */
export class LogBuffer {
  lines: string[] = [];
  /** when each line was written (Unix ms), where the server said; null where not */
  times: (number | null)[] = [];
  /** plain text of each line, lower-cased, computed when first searched */
  plain: (string | undefined)[] = [];
  /** cells each line takes as shown, computed when first laid out wrapped */
  widths: (number | undefined)[] = [];
  firstOffset: number | null = null;
  next: number | null = null;
  private chars = 0;
  /** where batches start: the index of their first line and its exact offset */
  private marks: { index: number; offset: number }[] = [];

  append(offset: number, next: number, lines: string[], times?: (number | null)[]): void {
    if (this.firstOffset === null) this.firstOffset = offset;
    if (lines.length > 0) this.marks.push({ index: this.lines.length, offset });
    lines.forEach((line, index) => {
      this.lines.push(line);
      this.times.push(times?.[index] ?? null);
      this.plain.push(undefined);
      this.widths.push(undefined);
      this.chars += line.length;
    });
    this.next = next;
  }

  prepend(offset: number, lines: string[], times?: (number | null)[]): void {
    for (const mark of this.marks) mark.index += lines.length;
    this.marks.unshift({ index: 0, offset });
    this.starts = [];
    this.lines.unshift(...lines);
    this.times.unshift(...lines.map((_, index) => times?.[index] ?? null));
    this.plain.unshift(...new Array<string | undefined>(lines.length));
    this.widths.unshift(...new Array<number | undefined>(lines.length));
    for (const line of lines) this.chars += line.length;
    this.firstOffset = offset;
  }

  /** Drops the oldest batches until at most three quarters of the limits are held; returns how many lines went. */
  trimFront(maxLines = MAX_LINES, maxChars = MAX_CHARS): number {
    if (this.lines.length <= maxLines && this.chars <= maxChars) return 0;
    let dropChars = 0;
    let cut = 0;
    for (const mark of this.marks) {
      for (let i = cut; i < mark.index; i++) dropChars += this.lines[i].length;
      cut = mark.index;
      if (this.lines.length - cut <= maxLines * 0.75 && this.chars - dropChars <= maxChars * 0.75) break;
    }
    const mark = this.marks.find((m) => m.index === cut);
    if (cut === 0 || !mark) return 0;
    this.lines.splice(0, cut);
    this.times.splice(0, cut);
    this.plain.splice(0, cut);
    this.widths.splice(0, cut);
    this.chars -= dropChars;
    this.marks = this.marks.filter((m) => m.index >= cut).map((m) => ({ index: m.index - cut, offset: m.offset }));
    this.firstOffset = mark.offset;
    this.starts = [];
    return cut;
  }

  /** Where each line starts, filled forward on demand and dropped when lines are added in front or dropped. */
  private starts: number[] = [];

  /** Extends `starts` to cover line `index`: from the last one known, restarting at each batch's exact offset. */
  private startsUpTo(index: number): void {
    if (this.starts.length > index) return;
    const exact = new Map(this.marks.map((m) => [m.index, m.offset]));
    for (let i = this.starts.length; i <= index && i < this.lines.length; i++) {
      this.starts.push(exact.get(i) ?? (i === 0 ? (this.firstOffset ?? 0) : this.starts[i - 1] + utf8Length(this.lines[i - 1]) + 1));
    }
  }

  /** The byte offset where line `index` starts. */
  offsetOf(index: number): number {
    this.startsUpTo(index);
    return this.starts[index] ?? this.firstOffset ?? 0;
  }

  /** The index of the line starting at `offset` (or the last one before it); -1 outside the range held. */
  indexAt(offset: number): number {
    if (this.firstOffset === null || this.next === null || offset < this.firstOffset || offset >= this.next) return -1;
    this.startsUpTo(this.lines.length - 1);
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.starts[middle] <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}
