import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { RefObject } from 'preact';
import { displayWidth } from '../lineWidth';
import type { LogBuffer } from '../logBuffer';
import { fixedLayout, wrappedLayout, type RowLayout } from '../rowLayout';
import type { Rows } from '../sections';

/**
 * How many cells fit on a wrapped row of `scroller`: its width less a row's padding, over one
 * character's width, both measured on a hidden probe row (the font is monospace). One pixel is kept
 * spare: erring narrow only leaves blank space under a wrapped line, never hides text.
 */
function measureColumns(scroller: HTMLElement): number {
  const probe = document.createElement('div');
  probe.className = 'log-line';
  probe.style.cssText = 'visibility: hidden; white-space: pre; width: auto; min-width: 0';
  const text = probe.appendChild(document.createElement('span'));
  text.textContent = '0'.repeat(100);
  scroller.appendChild(probe);
  const style = getComputedStyle(probe);
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  const cell = text.getBoundingClientRect().width / 100;
  probe.remove();
  return cell > 0 ? Math.max(1, Math.floor((scroller.clientWidth - padding - 1) / cell)) : 1;
}

/**
 * The wrap width in cells while `wrap` is on (measured again when the scroller resizes, or the rows'
 * padding changes: `timed` puts the time column in it); else null.
 */
function useColumns(scroller: RefObject<HTMLElement>, wrap: boolean, timed: boolean): number | null {
  const [columns, setColumns] = useState<number | null>(null);
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!wrap || !element) return;
    const scrollerOnResize = () => setColumns(measureColumns(element));
    scrollerOnResize();
    const observer = new ResizeObserver(scrollerOnResize);
    observer.observe(element);
    return () => observer.disconnect();
  }, [wrap, timed]);
  return wrap ? columns : null;
}

/**
 * The layout of the shown rows: one line each, or wrapped at the scroller's width. Laid out again
 * only when the lines, the folds or the width change (not on scrolling); each line's width is
 * computed once and kept in the buffer.
 */
export function useRowLayout(scroller: RefObject<HTMLElement>, wrap: boolean, buffer: LogBuffer, rows: Rows, version: number, timed = false): RowLayout {
  const columns = useColumns(scroller, wrap, timed);
  const shown = useSameRanges(rows.ranges);
  return useMemo(() => {
    if (columns === null) return fixedLayout(rows.count);
    const widthOf = (index: number) => (buffer.widths[index] ??= displayWidth(buffer.lines[index]));
    return wrappedLayout(rows, widthOf, columns);
  }, [columns, buffer, version, shown]);
}

/** `ranges`, or the last drawing's own array when they are the same (a cheap key for the layout; every drawing makes new ones). */
function useSameRanges(ranges: readonly [number, number][]): readonly [number, number][] {
  const last = useRef(ranges);
  const before = last.current;
  if (before.length !== ranges.length || ranges.some(([a, b], k) => before[k][0] !== a || before[k][1] !== b)) last.current = ranges;
  return last.current;
}

/** Wrapping turned on or off, or a new width: the view stays on the row at its top, or at the end while following. */
export function useKeepPlaceOnRelayout(scroller: RefObject<HTMLElement>, layout: RowLayout, follow: boolean, scrollTop: number, setScrollTop: (top: number) => void): void {
  const laidOut = useRef(layout);
  useLayoutEffect(() => {
    const before = laidOut.current;
    laidOut.current = layout;
    const element = scroller.current;
    if (!element || before.columns === layout.columns) return;
    // `scrollTop` is where the reader was: the element's own may already be clamped to a shorter log.
    element.scrollTop = follow ? element.scrollHeight : layout.topOf(before.rowAt(scrollTop));
    setScrollTop(element.scrollTop);
  }, [layout]);
}

/**
 * The marked sections changed (a window of them read, a section closed): rows may fold or unfold
 * above the reader, who stays on the line at the top of the view (not while following: the end
 * stays in view). The line is the one at the view's top as drawn last (its rows and layout noted
 * after each drawing), read where the view is when this drawing starts: the reader may have
 * scrolled since (their scroll event not yet handled), and once the new rows are in the page the
 * browser may have clamped the position to their shorter height. It is found again by its index.
 */
export function useKeepLineOnSections(scroller: RefObject<HTMLElement>, rows: Rows, layout: RowLayout, version: number, follow: boolean, sections: unknown, setScrollTop: (top: number) => void): void {
  const drawn = useRef<{ rows: Rows; layout: RowLayout; version: number } | null>(null);
  // (Read while rendering: the page still holds the last drawing's rows.)
  const topBefore = scroller.current?.scrollTop ?? 0;
  useLayoutEffect(() => {
    const element = scroller.current;
    const before = drawn.current;
    // Lines added or dropped since (indexes moved): the view's own handling of those keeps its place.
    if (!element || !before || follow || before.version !== version) return;
    const topRow = before.layout.rowAt(topBefore);
    const held = before.rows.indexAt(topRow);
    if (held < 0) return;
    const within = topBefore - before.layout.topOf(topRow);
    // The line itself may be folded away now (an end marker): the next one shown stands for it.
    let row = -1;
    let index = held;
    for (; row < 0 && index < held + 64; index++) row = rows.rowOf(index);
    if (row < 0) return;
    const top = layout.topOf(row) + (index - 1 === held ? within : 0);
    if (Math.abs(top - element.scrollTop) < 1) return;
    element.scrollTop = top;
    setScrollTop(element.scrollTop);
  }, [sections]);
  useLayoutEffect(() => {
    drawn.current = { rows, layout, version };
  });
}
