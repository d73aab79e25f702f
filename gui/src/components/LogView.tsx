import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { runPath, type Run } from '../api';
import { plainText } from '../ansi';
import { LINE_HEIGHT, type RowLayout } from '../rowLayout';
import type { HubSocket } from '../socket';
import { markerFoldsOf, Rows, sectionsOf, type MarkerSection } from '../sections';
import { useWrapLines } from '../wrapLines';
import { formatStamp, useTimestamps } from '../timestamps';
import { LogLine } from './LogLine';
import { LogStatus } from './LogStatus';
import { LogToolbar } from './LogToolbar';
import { StepBar } from './StepBar';
import { useFolds, useKeepSeenOpen } from './useFolds';
import { useLogLines } from './useLogLines';
import { useLogSearch } from './useLogSearch';
import { useMarkerSections } from './useMarkerSections';
import { useKeepLineOnSections, useKeepPlaceOnRelayout, useRowLayout } from './useRowLayout';
import { runDetached } from '../report';

const OVERSCAN = 30;
/** Scroll events are ignored at most this long after the buffer is filled afresh (see `settling`). */
const SETTLE_MAX_MS = 500;

/** The step whose part of the log holds `offset`. */
const stepHolding = (run: Run, offset: number) => run.steps.find((step) => step.log_start !== null && step.log_start <= offset && (step.log_end === null || offset < step.log_end));

/**
 * The log of one run. `live`: follows the run over the WebSocket from its last lines, drops the
 * oldest past the buffer's limits, loads earlier parts on demand. `window`: a part of the log
 * opened at an offset (a permalink, a search match, a step), paged both ways over HTTP, until
 * "Jump to end" goes live again. Only the visible rows are in the DOM, placed by a RowLayout (one
 * line each, or long lines wrapped at the view's width).
 */
export function LogView({ socket, run, at, onRecord }: {
  socket: HubSocket;
  run: Run;
  at?: number;
  /** the run's record changed (a `run` message), or null: it may have changed unseen (re-read it) */
  onRecord?: (run: Run | null) => void;
}) {
  const container = useRef<HTMLDivElement>(null);
  const prepended = useRef(0);
  const scrollToIndex = useRef<number | null>(null);
  const [mode, setMode] = useState<'live' | 'window'>(at === undefined ? 'live' : 'window');
  const [windowAt, setWindowAt] = useState<number | null>(at ?? null);
  const [highlight, setHighlight] = useState<number | null>(at ?? null);
  const [follow, setFollow] = useState(at === undefined);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [wrap, setWrap] = useWrapLines();
  const [timestamps, setTimestamps] = useTimestamps();
  /** the lines are asked for with their times (switching reloads the view) */
  const timed = timestamps !== 'off';
  const [dropped, setDropped] = useState(0);
  const folds = useFolds(run, at === undefined ? undefined : stepHolding(run, at));
  /** the line a window opens at goes to the top of the view (a reload in place), not a third down */
  const alignTop = useRef(false);
  const rowsRef = useRef<Rows | null>(null);
  const layoutRef = useRef<RowLayout | null>(null);
  const rowCountBefore = useRef<number | null>(null);
  const markers = useMarkerSections(run);
  /** marked sections the reader folded or unfolded (by run and id: the view may go on to another run); `allMarkers`: Expand/Collapse all's choice */
  const [markerChoices, setMarkerChoices] = useState<Map<string, boolean>>(new Map());
  const [allMarkersChoice, setAllMarkers] = useState<{ runId: number; folded: boolean } | null>(null);
  const allMarkers = allMarkersChoice?.runId === run.id ? allMarkersChoice.folded : null;
  const choiceKey = (marker: MarkerSection) => `${run.id}:${marker.id}`;
  /** A section holding the line the view opened at (a permalink, a search match) starts open, also when read later. */
  const openedAt = highlight ?? at;
  const holdsOpened = (marker: MarkerSection) => openedAt !== undefined && marker.header_end <= openedAt && (marker.end === null || openedAt < marker.end);
  const isMarkerFolded = (marker: MarkerSection) => markerChoices.get(choiceKey(marker)) ?? allMarkers ?? (holdsOpened(marker) ? false : marker.collapsed);
  /** a fresh buffer is filling: scroll events (the browser clamping the old position) are not the reader's */
  const settling = useRef(false);

  const { buffer, version, bump, complete, loadEarlier, loadLater } = useLogLines({
    socket,
    run,
    mode,
    windowAt,
    timed,
    onRecord,
    onSections: (list) => (list ? markers.merge(list) : markers.reload()),
    events: {
      reset: (how) => {
        if (how.live) {
          settling.current = true;
          // Cleared once the new lines are drawn (below); and in any case soon, so a reset that draws
          // nothing new (the same lines again) cannot leave the reader's scrolls ignored for good.
          setTimeout(() => (settling.current = false), SETTLE_MAX_MS);
        }
        setFollow(how.live);
        if (!how.live) scrollToIndex.current = how.index;
      },
      beforePrepend: () => {
        rowCountBefore.current = rowsRef.current?.count ?? 0;
      },
      // (the step the reader is inside, its header now loaded above them, was seen open: it stays open)
      prepended: (count) => {
        prepended.current = count;
      },
    },
  });

  useLayoutEffect(() => {
    const element = container.current;
    if (!element) return;
    if (prepended.current > 0) {
      // Rows added above the view: it stays on the lines it showed (the old first row is below them).
      element.scrollTop += layoutRef.current?.topOf((rowsRef.current?.count ?? 0) - (rowCountBefore.current ?? 0)) ?? 0;
      prepended.current = 0;
      rowCountBefore.current = null;
    }
    const targetRow = scrollToIndex.current === null ? -1 : (rowsRef.current?.rowOf(scrollToIndex.current) ?? -1);
    if (targetRow >= 0) {
      element.scrollTop = Math.max(0, (layoutRef.current?.topOf(targetRow) ?? 0) - (alignTop.current ? 0 : element.clientHeight / 3));
      alignTop.current = false;
      setScrollTop(element.scrollTop);
      scrollToIndex.current = null;
    } else if (follow) element.scrollTop = element.scrollHeight;
    if (settling.current && buffer.current.lines.length > 0) {
      // Scroll events already queued for the old position are let pass first.
      requestAnimationFrame(() => requestAnimationFrame(() => (settling.current = false)));
    }
    setViewport(element.clientHeight);
  }, [version, follow]);

  // While following, the oldest lines go past the limits (they load again by offset).
  const b = buffer.current;
  if (mode === 'live' && follow) {
    const gone = b.trimFront();
    if (gone > 0) queueMicrotask(() => setDropped((n) => n + gone));
  }

  const { search, runSearch, goToMatch } = useLogSearch(run, openAt);

  // Matches among the loaded lines, highlighted.
  const localMatches = useMemo(() => {
    const needle = search.query.toLowerCase();
    const found = new Set<number>();
    if (!needle) return found;
    for (let index = 0; index < b.lines.length; index++) {
      const text = (b.plain[index] ??= plainText(b.lines[index]).toLowerCase());
      if (text.includes(needle)) found.add(index);
    }
    return found;
  }, [search.query, version]);

  function onScroll(event: Event) {
    const element = event.currentTarget as HTMLDivElement;
    setScrollTop(element.scrollTop);
    if (settling.current) return;
    const atBottom = element.scrollTop + element.clientHeight >= element.scrollHeight - LINE_HEIGHT / 2;
    if (mode === 'live') setFollow(atBottom);
    // Near the top of lines that do not all fit (an emptied buffer's scroll event is not a reader scrolling up).
    if (!atBottom && element.scrollTop < LINE_HEIGHT * 50) runDetached('loading earlier lines', loadEarlier());
    if (element.scrollTop + element.clientHeight > element.scrollHeight - LINE_HEIGHT * 50) runDetached('loading later lines', loadLater());
  }

  /** Shows the line at `offset`: scrolled to if loaded, else opened as a window around it. */
  function openAt(offset: number) {
    setHighlight(offset);
    setFollow(false);
    // A folded step holding it opens.
    const holder = stepHolding(run, offset);
    if (holder) folds.open(holder);
    // And the marked sections holding it (past their header line).
    const holding = markers.list.filter((marker) => marker.header_end <= offset && (marker.end === null || offset < marker.end) && isMarkerFolded(marker));
    if (holding.length > 0) setMarkerChoices((current) => new Map([...current, ...holding.map((marker) => [choiceKey(marker), false] as const)]));
    const index = buffer.current.indexAt(offset);
    if (index >= 0) {
      scrollToIndex.current = index;
      bump();
      return;
    }
    setMode('window');
    setWindowAt(offset);
  }

  function jumpToEnd() {
    setHighlight(null);
    if (mode === 'window') {
      setMode('live');
      setWindowAt(null);
      return;
    }
    setFollow(true);
    const element = container.current;
    if (element) element.scrollTop = element.scrollHeight;
  }

  /** Times on or off reload the lines: a reader who scrolled up stays at the line at the top of the view. */
  function chooseTimestamps(choice: typeof timestamps) {
    if ((choice !== 'off') !== timed && (!follow || mode === 'window')) {
      const top = rowsRef.current?.indexAt(layoutRef.current?.rowAt(scrollTop) ?? 0) ?? -1;
      if (top >= 0) {
        alignTop.current = true;
        setMode('window');
        setWindowAt(buffer.current.offsetOf(top));
      }
    }
    setTimestamps(choice);
  }

  const isFolded = folds.isFolded;

  function toggleFold(step: Run['steps'][number]) {
    setFollow(false);
    folds.toggle(step);
  }

  function toggleMarker(marker: MarkerSection) {
    setFollow(false);
    setMarkerChoices((current) => new Map(current).set(choiceKey(marker), !isMarkerFolded(marker)));
  }

  function setAllFolds(folded: boolean) {
    folds.setAll(folded);
    setMarkerChoices(new Map());
    setAllMarkers({ runId: run.id, folded });
  }

  // Step sections, and the sections their output marks: a folded one shows its header line only.
  const sections = sectionsOf(run.steps, b);
  const markerFolds = markerFoldsOf(markers.list, b);
  const visible = new Rows(b.lines.length, sections, isFolded, markerFolds, isMarkerFolded);
  rowsRef.current = visible;
  const layout = useRowLayout(container, wrap, b, visible, version, timed);
  layoutRef.current = layout;
  useKeepPlaceOnRelayout(container, layout, follow, scrollTop, setScrollTop);
  useKeepLineOnSections(container, visible, layout, version, follow, markers.list, setScrollTop);
  // The rows grew or shrank without new lines drawn (a section opened or folded by a message, or drawn
  // with lines that came before their own frame): a following view stays at the end. Only one that
  // was at the end of the old rows: a reader who has just scrolled away (the scroll event not yet
  // handled, so `follow` still says so) is left where they went.
  const heightBefore = useRef(0);
  useLayoutEffect(() => {
    const element = container.current;
    if (!element) return;
    const wasAtEnd = element.scrollTop + element.clientHeight >= heightBefore.current - LINE_HEIGHT / 2;
    if (follow && wasAtEnd) element.scrollTop = element.scrollHeight;
    heightBefore.current = element.scrollHeight;
  }, [layout.totalHeight]);
  useKeepSeenOpen(container, visible, layout, sections, isFolded, folds.keepOpen);

  const headers = new Map(sections.filter((s) => s.hasHeader).map((s) => [s.start, s]));
  const markerHeaders = new Map(markerFolds.filter((fold) => fold.hasHeader).map((fold) => [fold.start, fold]));
  const first = Math.max(0, layout.rowAt(scrollTop) - OVERSCAN);
  const last = Math.min(visible.count, layout.rowAt(scrollTop + viewport) + 1 + OVERSCAN);
  const highlighted = highlight === null ? -1 : b.indexAt(highlight);
  const hashBase = `#/projects/${run.project_id}/runs/${run.id}`;
  const runStart = run.started_at ? Date.parse(run.started_at) : null;
  // The sections of the part shown (and a screen either side) are held, whatever their number.
  const shownFrom = last > first ? visible.indexAt(first) : -1;
  const shownTo = last > first ? visible.indexAt(last - 1) : -1;
  useEffect(() => {
    if (shownFrom >= 0 && shownTo >= 0) markers.cover(b.offsetOf(shownFrom), b.offsetOf(shownTo));
  });
  const rows = [];
  for (let row = first; row < last; row++) {
    const index = visible.indexAt(row);
    const header = headers.get(index);
    const marker = header ? undefined : markerHeaders.get(index);
    const classes = ['log-line', header && 'section-header', localMatches.has(index) && 'match', index === highlighted && 'current-match'].filter(Boolean).join(' ');
    rows.push(
      <LogLine
        key={index}
        line={b.lines[index]}
        index={index}
        top={layout.topOf(row)}
        height={layout.heightOf(row)}
        classes={classes}
        href={`${hashBase}?at=${b.offsetOf(index)}`}
        stamp={timed ? formatStamp(b.times[index], timestamps, runStart) : undefined}
        time={b.times[index]}
        header={header}
        folded={header !== undefined ? isFolded(header.step) : marker !== undefined && isMarkerFolded(marker.marker)}
        onFold={toggleFold}
        marker={marker}
        onMarkerFold={toggleMarker}
      />,
    );
  }

  return (
    <section class="log-panel" aria-label="Run log">
      <StepBar run={run} onOpen={openAt} />
      <LogToolbar
        search={search}
        runSearch={runSearch}
        goToMatch={goToMatch}
        loadedMatches={localMatches.size}
        hasSections={sections.some((s) => s.hasHeader) || markerHeaders.size > 0}
        setAllFolds={setAllFolds}
        loadEarlier={b.firstOffset !== null && b.firstOffset > 0 ? () => runDetached('loading earlier lines', loadEarlier()) : undefined}
        jumpToEnd={!follow || mode === 'window' ? jumpToEnd : undefined}
        timestamps={timestamps}
        setTimestamps={chooseTimestamps}
        wrap={wrap}
        setWrap={setWrap}
        rawHref={`${runPath(run)}/logs/raw`}
      />
      <div class={['log-scroll', layout.columns !== null && 'wrap', timed && 'timed'].filter(Boolean).join(' ')} ref={container} onScroll={onScroll} tabIndex={0} aria-label="Log lines" data-testid="log-scroll">
        <div class="log-spacer" style={{ height: `${layout.totalHeight}px` }}>{rows}</div>
      </div>
      <LogStatus lines={b.lines.length} dropped={dropped} mode={mode} follow={follow} complete={complete} />
    </section>
  );
}
