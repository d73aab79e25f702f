import { useLayoutEffect, useState } from 'preact/hooks';
import type { RefObject } from 'preact';
import type { Run } from '../api';
import type { RowLayout } from '../rowLayout';
import { foldedByDefault, type Rows, type Section } from '../sections';

type Step = Run['steps'][number];

/**
 * Which steps' sections are folded. The reader's own choices win (a click, Expand all, Collapse
 * all); then a step the reader has seen open stays open (useKeepSeenOpen), so a section never folds
 * under a reader who watched it, as when the step they follow completes; the others show as
 * foldedByDefault says. `opened`: the step holding the line the view opens at starts open.
 */
export function useFolds(run: Run, opened?: Step) {
  /** step name → folded, for the steps chosen or seen open */
  const [folds, setFolds] = useState<Map<string, boolean>>(() => new Map(opened ? [[opened.name, false]] : []));

  const isFolded = (step: Step) => folds.get(step.name) ?? foldedByDefault(step, run.steps);

  return {
    isFolded,
    toggle(step: Step) {
      setFolds((current) => new Map(current).set(step.name, !isFolded(step)));
    },
    open(step: Step) {
      if (isFolded(step)) setFolds((current) => new Map(current).set(step.name, false));
    },
    setAll(folded: boolean) {
      setFolds(new Map(run.steps.map((step) => [step.name, folded])));
    },
    /** These steps were seen open: they stay open (unless the reader chose otherwise). */
    keepOpen(names: readonly string[]) {
      if (names.every((name) => folds.has(name))) return;
      setFolds((current) => {
        const next = new Map(current);
        for (const name of names) if (!next.has(name)) next.set(name, false);
        return next;
      });
    },
  };
}

/**
 * "Seen open": some row of a step's section (its header or its lines) was in the visible part of
 * the view, the section open, in a frame the page drew. After every drawing, once the view has
 * taken its scroll position, those steps are kept open. A step that ran and completed while the
 * reader was elsewhere in the log (or between two frames) was not seen, and may fold.
 */
export function useKeepSeenOpen(scroller: RefObject<HTMLElement>, rows: Rows, layout: RowLayout, sections: readonly Section[], isFolded: (step: Step) => boolean, keepOpen: (names: readonly string[]) => void): void {
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element || rows.count === 0 || element.clientHeight === 0) return;
    const top = layout.rowAt(element.scrollTop);
    const bottom = layout.rowAt(element.scrollTop + element.clientHeight - 1);
    const seen: string[] = [];
    for (const section of sections) {
      if (section.end <= section.start || (section.hasHeader && isFolded(section.step))) continue;
      const first = rows.rowOf(section.start);
      const last = rows.rowOf(section.end - 1);
      if (first >= 0 && last >= 0 && first <= bottom && last >= top) seen.push(section.step.name);
    }
    if (seen.length > 0) keepOpen(seen);
  });
}
