import type { Rows } from './sections';

/** One line of log text, in px (`.log-line` in style.css). */
export const LINE_HEIGHT = 18;

/** Where the rows lie vertically: the log view asks this instead of multiplying by a line height. */
export interface RowLayout {
  readonly count: number;
  readonly totalHeight: number;
  /** the width lines wrap at, in cells; null when they do not wrap */
  readonly columns: number | null;
  topOf(row: number): number;
  heightOf(row: number): number;
  /** The row at `y` px from the top, within [0, count). */
  rowAt(y: number): number;
}

const clamp = (row: number, count: number) => Math.max(0, Math.min(row, count - 1));

/** Every row one line high. */
export function fixedLayout(count: number): RowLayout {
  return {
    count,
    totalHeight: count * LINE_HEIGHT,
    columns: null,
    topOf: (row) => row * LINE_HEIGHT,
    heightOf: () => LINE_HEIGHT,
    rowAt: (y) => clamp(Math.floor(y / LINE_HEIGHT), count),
  };
}

/** The last position in the ascending `values` whose value is at most `target` (-1: none). */
function lastAtMost(values: readonly number[], target: number, valueAt = (k: number) => values[k]): number {
  let low = -1;
  let high = values.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (valueAt(middle) <= target) low = middle;
    else high = middle - 1;
  }
  return low;
}

/**
 * Rows wrapped at `columns` cells: a line `width` cells wide takes ceil(width / columns) lines (the
 * CSS breaks anywhere, so each wrapped line is full). Only the rows taller than one line are listed,
 * with the extra lines up to each, so a log of short lines costs next to nothing and any row's top
 * is a binary search away. One pass over the shown rows' widths, when the rows or the width change.
 */
export function wrappedLayout(rows: Rows, widthOf: (index: number) => number, columns: number): RowLayout {
  const tall: number[] = [];
  /** extra lines taken by tall[0..k] */
  const extraUpTo: number[] = [];
  let extra = 0;
  let row = 0;
  for (const [from, to] of rows.ranges) {
    for (let index = from; index < to; index++, row++) {
      const width = widthOf(index);
      if (width <= columns) continue;
      extra += Math.ceil(width / columns) - 1;
      tall.push(row);
      extraUpTo.push(extra);
    }
  }
  const extraBefore = (k: number) => (k > 0 ? extraUpTo[k - 1] : 0);
  const count = rows.count;
  return {
    count,
    totalHeight: (count + extra) * LINE_HEIGHT,
    columns,
    topOf(row) {
      const k = lastAtMost(tall, row - 1);
      return (row + (k < 0 ? 0 : extraUpTo[k])) * LINE_HEIGHT;
    },
    heightOf(row) {
      const k = lastAtMost(tall, row);
      return k >= 0 && tall[k] === row ? (1 + extraUpTo[k] - extraBefore(k)) * LINE_HEIGHT : LINE_HEIGHT;
    },
    rowAt(y) {
      const line = Math.floor(y / LINE_HEIGHT);
      // the last tall row starting at or above that line
      const k = lastAtMost(tall, line, (k) => tall[k] + extraBefore(k));
      if (k < 0) return clamp(line, count);
      if (line <= tall[k] + extraUpTo[k]) return tall[k];
      return clamp(line - extraUpTo[k], count);
    },
  };
}
