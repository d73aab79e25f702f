import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, isActive, runPath, type Run } from '../api';
import type { MarkerSection } from '../sections';
import { MAX_SHOWN_SECTIONS, SectionWindow } from '../sectionWindow';
import type { SectionPage } from '../../../server/wire';
import { runDetached } from '../report';

const PAGE = 5000;
/** Of a window loaded around the reader's place, this share lies before it (readers mostly go on down). */
const BEFORE_SHARE = 0.25;
/** Sections open at a window's start: at most the nesting limit (server/sections/markers.ts). */
const MAX_ANCESTORS = 32;

export { MAX_SHOWN_SECTIONS };

/**
 * The sections a run's steps mark (GitHub groups, GitLab and Buildkite sections), for a log of any
 * number of them: a window of at most MAX_SHOWN_SECTIONS around the part of the log the view shows
 * (`cover`), read a page at a time from the hub's index (`?from=` finds the reader's place), loaded
 * again around it when the reader goes past its edges, kept current by the `sections` messages of
 * the log's subscription (`merge`), read again when that subscription (re)starts and once the run
 * has ended (`reload`).
 */
export function useMarkerSections(run: Run) {
  const held = useRef(new SectionWindow());
  const [version, setVersion] = useState(0);
  const loading = useRef<Promise<void> | null>(null);
  /** what to load once the load under way is done: around a byte offset, or the same window again */
  const queued = useRef<{ at: number } | 'again' | null>(null);
  /** messages that came while a window was read: applied to it once it is in place */
  const arrived = useRef<MarkerSection[][]>([]);
  /** the view's place (top byte) the window held was read for */
  const loadedFor = useRef<number | null>(null);
  /**
   * A window that did not cover the view it was read for: the view spans more sections than a
   * window holds (a folded section with thousands inside). Not read again while the view's top
   * stays within it, or every scroll would read 20 000 sections.
   */
  const saturated = useRef<SectionWindow | null>(null);
  const runId = useRef(run.id);
  /** the view asked while a window was read: it is drawn again after, to ask again */
  const askedWhileLoading = useRef(false);

  function merge(list: readonly MarkerSection[]) {
    if (loading.current) arrived.current.push([...list]);
    if (held.current.merge(list)) setVersion((v) => v + 1);
  }

  /** Reads sections `first`… (up to the limit) and those open at the first's start; then swaps them in. */
  async function readWindow(first: number): Promise<void> {
    const id = run.id;
    const sections: MarkerSection[] = [];
    let atEnd = false;
    for (let after = first - 1; sections.length < MAX_SHOWN_SECTIONS; ) {
      const page = await api<SectionPage>('GET', `${runPath(run)}/sections?after=${after}&limit=${Math.min(PAGE, MAX_SHOWN_SECTIONS - sections.length)}`);
      if (runId.current !== id) return;
      sections.push(...page.sections);
      if (page.sections.length === 0) {
        atEnd = true;
        break;
      }
      after = page.next;
    }
    const ancestors: MarkerSection[] = [];
    for (let parent = sections[0]?.parent ?? null; parent !== null && parent < first && ancestors.length < MAX_ANCESTORS; ) {
      const [section] = (await api<SectionPage>('GET', `${runPath(run)}/sections?after=${parent - 1}&limit=1`)).sections;
      if (runId.current !== id || !section) return;
      ancestors.push(section);
      parent = section.parent;
    }
    const next = SectionWindow.of(first, sections, ancestors, atEnd);
    for (const list of arrived.current.splice(0)) next.merge(list);
    held.current = next;
    setVersion((v) => v + 1);
  }

  /** The first id of a window around byte `at`: a share of the limit before the first section there. */
  async function firstAround(at: number): Promise<number> {
    const page = await api<SectionPage>('GET', `${runPath(run)}/sections?from=${at}&limit=1`);
    const before = page.sections.length > 0 ? page.sections[0].id - 1 : page.next;
    return Math.max(1, before - Math.floor(MAX_SHOWN_SECTIONS * BEFORE_SHARE) + 1);
  }

  /** One load at a time; asked again meanwhile, the latest ask is done after. */
  function load(what: { at: number } | 'again') {
    if (loading.current) {
      if (queued.current === null || what !== 'again') queued.current = what;
      return;
    }
    arrived.current = [];
    loading.current = (async () => {
      if (what === 'again') await readWindow(held.current.first);
      else await readWindow(await firstAround(what.at));
    })().finally(() => {
      loading.current = null;
      arrived.current = [];
      const next = queued.current;
      queued.current = null;
      if (next) load(next);
      else if (askedWhileLoading.current) setVersion((v) => v + 1);
      askedWhileLoading.current = false;
    });
    runDetached('loading the log\'s sections', loading.current);
  }

  /** The view shows bytes [top, bottom] of the log: the window is loaded around them unless it holds them. */
  function cover(top: number, bottom: number) {
    // (While a window is read, the one held is not the one to judge by: asked again after it.)
    if (loading.current) {
      askedWhileLoading.current = true;
      return;
    }
    const current = held.current;
    if (current.covers(top, bottom)) return;
    if (loadedFor.current === top) saturated.current = current;
    if (saturated.current === current && current.holds(top)) return;
    loadedFor.current = top;
    load({ at: top });
  }

  /** The same window again (the subscription restarted, the run ended: sections may have changed unseen). */
  function reload() {
    if (loadedFor.current !== null) load('again');
  }

  useEffect(() => {
    runId.current = run.id;
    held.current = new SectionWindow();
    loadedFor.current = null;
    saturated.current = null;
    queued.current = null;
    setVersion((v) => v + 1);
  }, [run.id]);

  // Sections left open close where the run ends: read once more then.
  const active = isActive(run);
  useEffect(() => {
    if (!active) reload();
  }, [run.id, active]);

  const list = useMemo(() => held.current.list(), [version]);
  return { list, merge, reload, cover };
}
