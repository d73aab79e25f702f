import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, runPath, type LogPage, type Run } from '../api';
import { plainText, toSegments } from '../ansi';
import type { CompleteMessage, HubSocket } from '../socket';

const LINE_HEIGHT = 18;
const OVERSCAN = 30;
const INITIAL_TAIL = 5000;
const EARLIER_PAGE = 5000;

interface LogBuffer {
  lines: string[];
  /** plain text of each line, computed when first searched */
  plain: (string | undefined)[];
  /** byte offset where lines[0] starts; earlier lines are loaded on demand */
  firstOffset: number | null;
  complete: CompleteMessage | null;
  loadingEarlier: boolean;
}

interface Search {
  query: string;
  upTo: number;
  matches: number[];
}

/**
 * The live log of one run: windowed rendering (only the visible rows are in the DOM), follow mode
 * that sticks to the bottom until the user scrolls up, search, and earlier lines loaded by offset.
 */
export function LogView({ socket, run }: { socket: HubSocket; run: Run }) {
  const buffer = useRef<LogBuffer>({ lines: [], plain: [], firstOffset: null, complete: null, loadingEarlier: false });
  const search = useRef<Search>({ query: '', upTo: 0, matches: [] });
  const container = useRef<HTMLDivElement>(null);
  const prepended = useRef(0);
  const [version, setVersion] = useState(0);
  const [follow, setFollow] = useState(true);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [query, setQuery] = useState('');
  const [current, setCurrent] = useState(-1);

  useEffect(() => {
    buffer.current = { lines: [], plain: [], firstOffset: null, complete: null, loadingEarlier: false };
    search.current = { query: '', upTo: 0, matches: [] };
    setFollow(true);
    let frame = 0;
    const render = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setVersion((v) => v + 1);
      });
    };
    const unsubscribe = socket.subscribeRun(run.id, { tail: INITIAL_TAIL }, (message) => {
      const b = buffer.current;
      if (message.type === 'subscribed' && b.firstOffset === null) b.firstOffset = message.offset ?? 0;
      else if (message.type === 'lines') for (const line of message.lines) b.lines.push(line);
      else if (message.type === 'complete') b.complete = message;
      render();
    });
    return () => {
      cancelAnimationFrame(frame);
      unsubscribe();
    };
  }, [socket, run.id]);

  useLayoutEffect(() => {
    const element = container.current;
    if (!element) return;
    if (prepended.current > 0) {
      element.scrollTop += prepended.current * LINE_HEIGHT;
      prepended.current = 0;
    }
    if (follow) element.scrollTop = element.scrollHeight;
    setViewport(element.clientHeight);
  }, [version, follow]);

  const b = buffer.current;
  const matches = useMemo(() => {
    const s = search.current;
    const needle = query.trim().toLowerCase();
    if (s.query !== needle || s.upTo > b.lines.length) Object.assign(s, { query: needle, upTo: 0, matches: [] });
    if (!needle) return s.matches;
    for (let index = s.upTo; index < b.lines.length; index++) {
      const text = (b.plain[index] ??= plainText(b.lines[index]).toLowerCase());
      if (text.includes(needle)) s.matches.push(index);
    }
    s.upTo = b.lines.length;
    return [...s.matches];
  }, [query, version]);

  async function loadEarlier() {
    const b = buffer.current;
    if (b.loadingEarlier || b.firstOffset === null || b.firstOffset === 0) return;
    b.loadingEarlier = true;
    try {
      const page = await api<LogPage>('GET', `${runPath(run)}/logs?tail=${EARLIER_PAGE}&before=${b.firstOffset}`);
      if (page.next !== b.firstOffset) return; // the buffer was reset meanwhile
      b.lines.unshift(...page.lines);
      b.plain.unshift(...new Array<string | undefined>(page.lines.length));
      b.firstOffset = page.offset;
      search.current.upTo = Number.POSITIVE_INFINITY; // indices moved: search again
      prepended.current = page.lines.length;
      setVersion((v) => v + 1);
    } finally {
      b.loadingEarlier = false;
    }
  }

  function onScroll(event: Event) {
    const element = event.currentTarget as HTMLDivElement;
    setScrollTop(element.scrollTop);
    setFollow(element.scrollTop + element.clientHeight >= element.scrollHeight - LINE_HEIGHT / 2);
    if (element.scrollTop < LINE_HEIGHT * 50) void loadEarlier();
  }

  function goToMatch(step: 1 | -1) {
    if (matches.length === 0) return;
    const next = current === -1 ? (step === 1 ? 0 : matches.length - 1) : (current + step + matches.length) % matches.length;
    setCurrent(next);
    setFollow(false);
    const element = container.current!;
    element.scrollTop = Math.max(0, matches[next] * LINE_HEIGHT - element.clientHeight / 2);
  }

  function jumpToEnd() {
    setFollow(true);
    const element = container.current;
    if (element) element.scrollTop = element.scrollHeight;
  }

  const first = Math.max(0, Math.floor(scrollTop / LINE_HEIGHT) - OVERSCAN);
  const last = Math.min(b.lines.length, Math.ceil((scrollTop + viewport) / LINE_HEIGHT) + OVERSCAN);
  const matchSet = new Set(matches);
  const currentLine = current >= 0 ? matches[current] : -1;
  const rows = [];
  for (let index = first; index < last; index++) {
    const classes = ['log-line', matchSet.has(index) && 'match', index === currentLine && 'current-match'].filter(Boolean).join(' ');
    rows.push(
      <div key={index} class={classes} style={{ top: `${index * LINE_HEIGHT}px` }} data-index={index}>
        {toSegments(b.lines[index]).map((segment, i) => (
          <span
            key={i}
            style={{ color: segment.color, background: segment.background, fontWeight: segment.bold ? 'bold' : undefined, fontStyle: segment.italic ? 'italic' : undefined, textDecoration: segment.underline ? 'underline' : undefined }}
          >
            {segment.text}
          </span>
        ))}
      </div>,
    );
  }

  return (
    <section class="log-panel" aria-label="Run log">
      <div class="log-toolbar">
        <label>
          <span class="visually-hidden">Search the loaded log</span>
          <input type="search" placeholder="Search log" value={query} onInput={(e) => { setQuery((e.target as HTMLInputElement).value); setCurrent(-1); }} onKeyDown={(e) => e.key === 'Enter' && goToMatch(e.shiftKey ? -1 : 1)} />
        </label>
        <button type="button" onClick={() => goToMatch(-1)} disabled={matches.length === 0} aria-label="Previous match">↑</button>
        <button type="button" onClick={() => goToMatch(1)} disabled={matches.length === 0} aria-label="Next match">↓</button>
        <span class="match-count" aria-live="polite">{query.trim() ? `${matches.length} matches` : ''}</span>
        <span class="spacer" />
        {b.firstOffset !== null && b.firstOffset > 0 && <button type="button" onClick={() => void loadEarlier()}>Load earlier lines</button>}
        {!follow && <button type="button" class="primary" onClick={jumpToEnd}>Jump to end</button>}
        <a href={`${runPath(run)}/logs/raw`} target="_blank" rel="noopener">Raw log</a>
      </div>
      <div class="log-scroll" ref={container} onScroll={onScroll} tabIndex={0} aria-label="Log lines" data-testid="log-scroll">
        <div class="log-spacer" style={{ height: `${b.lines.length * LINE_HEIGHT}px` }}>{rows}</div>
      </div>
      <div class="log-status">
        <span data-testid="line-count">{b.lines.length.toLocaleString('en')} lines loaded</span>
        <span>{follow ? 'Following' : 'Paused: scrolled up'}</span>
        {b.complete && <span data-testid="log-complete">Ended: {b.complete.status}{b.complete.exit_code !== null ? ` (exit ${b.complete.exit_code})` : ''}</span>}
      </div>
    </section>
  );
}
