import type { Run } from './api';
import type { LogBuffer } from './logBuffer';
import type { Section as MarkerSection } from '../../server/wire';

export type { MarkerSection };

type Step = Run['steps'][number];

/** A step's lines in the buffer: its header line at `start` (when loaded), its output up to `end`. */
export interface Section {
  step: Step;
  start: number;
  end: number;
  /** its header line is in the buffer (so it can fold to it) */
  hasHeader: boolean;
}

/**
 * How a step shows until the reader chooses (or sees it open, see useFolds): a completed step is
 * folded, except the last step that started (a finished run's last step, the only step of a
 * one-step run, or the step a running run has just finished). Running, failed and cancelled steps
 * are open.
 */
export function foldedByDefault(step: Step, steps: readonly Step[]): boolean {
  if (step.status !== 'completed') return false;
  const last = steps.findLast((other) => other.log_start !== null);
  return last !== undefined && last.name !== step.name;
}

/** Where each started step's part of the log lies among the buffer's lines. */
export function sectionsOf(steps: readonly Step[], buffer: LogBuffer): Section[] {
  if (buffer.firstOffset === null || buffer.next === null) return [];
  const sections: Section[] = [];
  for (const step of steps) {
    if (step.log_start === null || step.log_start >= buffer.next) continue;
    if (step.log_end !== null && step.log_end <= buffer.firstOffset) continue;
    const hasHeader = step.log_start >= buffer.firstOffset;
    const start = hasHeader ? buffer.indexAt(step.log_start) : 0;
    const end = step.log_end === null || step.log_end >= buffer.next ? buffer.lines.length : buffer.indexAt(step.log_end);
    if (start < 0 || end < start) continue;
    sections.push({ step, start, end, hasHeader });
  }
  return sections;
}

/** A section a step's output marks (see server/sections), placed among the buffer's lines. */
export interface MarkerFold {
  marker: MarkerSection;
  start: number;
  end: number;
  hasHeader: boolean;
  /** its end marker's line (`::endgroup::`, GitLab's `section_end`), never shown; null when none is loaded */
  endLine: number | null;
}

/** Where each marked section lies among the buffer's lines (those outside it are left out). */
export function markerFoldsOf(markers: readonly MarkerSection[], buffer: LogBuffer): MarkerFold[] {
  if (buffer.firstOffset === null || buffer.next === null) return [];
  const folds: MarkerFold[] = [];
  for (const marker of markers) {
    if (marker.start >= buffer.next || (marker.end !== null && marker.end <= buffer.firstOffset)) continue;
    const hasHeader = marker.start >= buffer.firstOffset;
    const start = hasHeader ? buffer.indexAt(marker.start) : 0;
    const end = marker.end === null || marker.end >= buffer.next ? buffer.lines.length : buffer.indexAt(marker.end);
    if (start < 0 || end < start) continue;
    // GitHub's and GitLab's sections end with a marker line of their own; Buildkite's where the next begins.
    const closedByMarker = marker.end !== null && marker.dialect !== 'buildkite' && end > start + 1 && isEndMarker(buffer.lines[end - 1] ?? '');
    folds.push({ marker, start, end, hasHeader, endLine: closedByMarker ? end - 1 : null });
  }
  return folds;
}

const isEndMarker = (line: string) => /^::endgroup::\s*$/.test(line) || line.includes('\x1b[0Ksection_end:');

/**
 * The rows shown: ranges of buffer lines, a folded section reduced to its header line, end
 * markers left out. Folding a section of any size is the same small list of ranges; nothing is
 * loaded or copied for it.
 */
export class Rows {
  readonly ranges: [number, number][] = [];
  readonly count: number;
  /** the row each range starts at (so a row or a line is found by a binary search, however many ranges) */
  private readonly firstRows: number[] = [];

  constructor(total: number, sections: readonly Section[], folded: (step: Step) => boolean, markers: readonly MarkerFold[] = [], markerFolded: (marker: MarkerSection) => boolean = () => false) {
    /** [from, to): lines not shown */
    const hidden: [number, number][] = [];
    for (const section of sections) if (section.hasHeader && folded(section.step)) hidden.push([section.start + 1, section.end]);
    for (const fold of markers) {
      if (fold.hasHeader && markerFolded(fold.marker)) hidden.push([fold.start + 1, fold.end]);
      else if (fold.endLine !== null) hidden.push([fold.endLine, fold.endLine + 1]);
    }
    hidden.sort((a, b) => a[0] - b[0]);
    let from = 0;
    for (const [start, end] of hidden) {
      if (start > from) this.ranges.push([from, start]);
      from = Math.max(from, end);
    }
    if (total > from) this.ranges.push([from, total]);
    let count = 0;
    for (const [a, b] of this.ranges) {
      this.firstRows.push(count);
      count += b - a;
    }
    this.count = count;
  }

  /** The buffer index shown at `row`. */
  indexAt(row: number): number {
    if (row < 0 || row >= this.count) return -1;
    const k = lastAtMost(this.ranges.length, (i) => this.firstRows[i], row);
    return this.ranges[k][0] + row - this.firstRows[k];
  }

  /** The row showing buffer line `index`; -1 when it is folded away. */
  rowOf(index: number): number {
    const k = lastAtMost(this.ranges.length, (i) => this.ranges[i][0], index);
    if (k < 0 || index >= this.ranges[k][1]) return -1;
    return this.firstRows[k] + index - this.ranges[k][0];
  }
}

/** The last of `length` ascending values (`valueAt`) at most `target`; -1 when none is. */
function lastAtMost(length: number, valueAt: (i: number) => number, target: number): number {
  let low = -1;
  let high = length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (valueAt(middle) <= target) low = middle;
    else high = middle - 1;
  }
  return low;
}
