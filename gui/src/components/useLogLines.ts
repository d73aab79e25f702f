import { useEffect, useRef, useState } from 'preact/hooks';
import { api, runPath, type LogPage, type Run } from '../api';
import { LogBuffer } from '../logBuffer';
import type { CompleteMessage, HubSocket, SectionsMessage } from '../socket';
import { runDetached } from '../report';

const INITIAL_TAIL = 5000;
const EARLIER_PAGE = 5000;
/** Lines shown before a line opened by offset (a permalink, a search match, a step). */
const CONTEXT_BEFORE = 200;

/** What the view does when the lines change under it. */
export interface LinesEvents {
  /** A fresh buffer: `live` follows its end; a window shows line `index` (the one opened). */
  reset(how: { live: true } | { live: false; index: number }): void;
  /** Earlier lines are about to go in front: the view notes where it was. */
  beforePrepend(): void;
  /** `count` lines went in front. */
  prepended(count: number): void;
}

/**
 * The lines of a run's log held by its view. `live`: the last lines over the WebSocket, then every
 * new one. `window`: the lines around `windowAt` over HTTP, paged both ways. Either way earlier
 * parts load by offset. With `timed`, each line comes with its time (switching reloads).
 */
export function useLogLines({ socket, run, mode, windowAt, timed, onRecord, onSections, events }: {
  socket: HubSocket;
  /** `sections` messages; null: the subscription (re)started, sections may have changed unseen */
  onSections?: (sections: SectionsMessage['sections'] | null) => void;
  run: Run;
  mode: 'live' | 'window';
  windowAt: number | null;
  timed: boolean;
  onRecord?: (run: Run | null) => void;
  events: LinesEvents;
}) {
  const buffer = useRef(new LogBuffer());
  const loading = useRef({ earlier: false, later: false });
  const [version, setVersion] = useState(0);
  const [complete, setComplete] = useState<CompleteMessage | null>(null);
  const [windowEnd, setWindowEnd] = useState(false);
  const withTimes = timed ? '&timestamps=1' : '';
  const bump = () => setVersion((v) => v + 1);

  // Live: the last lines, then every new one, drawn once per animation frame.
  useEffect(() => {
    if (mode !== 'live') return;
    buffer.current = new LogBuffer();
    setComplete(null);
    events.reset({ live: true });
    let frame = 0;
    const render = () => {
      frame ||= requestAnimationFrame(() => {
        frame = 0;
        bump();
      });
    };
    const unsubscribe = socket.subscribeRun(run.id, { tail: INITIAL_TAIL }, (message) => {
      const b = buffer.current;
      if (message.type === 'run') {
        onRecord?.(message.run);
        return;
      }
      // From here on the hub tells this subscription every change; one before it may have been missed.
      if (message.type === 'sections') {
        onSections?.(message.sections);
        return;
      }
      if (message.type === 'subscribed') {
        onRecord?.(null);
        onSections?.(null);
      }
      if (message.type === 'subscribed' && b.firstOffset === null) {
        b.firstOffset = message.offset ?? 0;
        b.next = b.firstOffset;
      } else if (message.type === 'lines') {
        // Only the lines that continue this buffer (the socket resumes by offset; nothing twice).
        if (b.next !== null && message.offset !== b.next) return;
        b.append(message.offset, message.next, message.lines, message.times);
      } else if (message.type === 'complete') setComplete(message);
      render();
    }, { timestamps: timed, sections: onSections !== undefined });
    return () => {
      cancelAnimationFrame(frame);
      unsubscribe();
    };
  }, [socket, run.id, mode, timed]);

  // Window: the lines around an offset, over HTTP.
  useEffect(() => {
    if (mode !== 'window' || windowAt === null) return;
    let alive = true;
    runDetached('loading the lines around a match', (async () => {
      const [before, after] = await Promise.all([
        api<LogPage>('GET', `${runPath(run)}/logs?tail=${CONTEXT_BEFORE}&before=${windowAt}${withTimes}`),
        api<LogPage>('GET', `${runPath(run)}/logs?offset=${windowAt}${withTimes}`),
      ]);
      if (!alive) return;
      const b = new LogBuffer();
      b.append(before.offset, before.next, before.lines, before.times);
      b.append(after.offset, after.next, after.lines, after.times);
      buffer.current = b;
      setWindowEnd(after.complete);
      events.reset({ live: false, index: before.lines.length });
      bump();
    })());
    return () => {
      alive = false;
    };
  }, [run.id, mode, windowAt, timed]);

  async function loadEarlier() {
    const b = buffer.current;
    if (loading.current.earlier || b.firstOffset === null || b.firstOffset === 0) return;
    loading.current.earlier = true;
    try {
      const page = await api<LogPage>('GET', `${runPath(run)}/logs?tail=${EARLIER_PAGE}&before=${b.firstOffset}${withTimes}`);
      if (buffer.current !== b || page.next !== b.firstOffset) return; // reset meanwhile
      events.beforePrepend();
      b.prepend(page.offset, page.lines, page.times);
      events.prepended(page.lines.length);
      bump();
    } finally {
      loading.current.earlier = false;
    }
  }

  async function loadLater() {
    const b = buffer.current;
    if (mode !== 'window' || loading.current.later || b.next === null || windowEnd) return;
    loading.current.later = true;
    try {
      const page = await api<LogPage>('GET', `${runPath(run)}/logs?offset=${b.next}${withTimes}`);
      if (buffer.current !== b || page.offset !== b.next) return;
      b.append(page.offset, page.next, page.lines, page.times);
      setWindowEnd(page.complete || page.lines.length === 0);
      bump();
    } finally {
      loading.current.later = false;
    }
  }

  return { buffer, version, bump, complete, loadEarlier, loadLater };
}
