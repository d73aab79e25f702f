import { useState } from 'preact/hooks';
import { api, runPath, type Run } from '../api';

export interface SearchState {
  query: string;
  /** matches in the whole log, from the server, in file order */
  offsets: number[];
  /** the server has more after these */
  more: boolean;
  nextAfter: number;
  current: number;
}

const NO_SEARCH: SearchState = { query: '', offsets: [], more: false, nextAfter: 0, current: -1 };

interface SearchPage {
  matches: { offset: number }[];
  next_after: number;
  complete: boolean;
}

/**
 * The search box's state: the whole log is searched on the server, 1000 matches at a time (more are
 * fetched when next goes past them); going to a match calls `openAt` with its offset.
 */
export function useLogSearch(run: Run, openAt: (offset: number) => void) {
  const [search, setSearch] = useState<SearchState>(NO_SEARCH);
  const fetchPage = (query: string, after: number) => api<SearchPage>('GET', `${runPath(run)}/logs/search?q=${encodeURIComponent(query)}&limit=1000&after=${after}`);

  async function runSearch(text: string) {
    const needle = text.trim();
    if (!needle) {
      setSearch(NO_SEARCH);
      return;
    }
    const page = await fetchPage(needle, 0);
    const state = { query: needle, offsets: page.matches.map((m) => m.offset), more: !page.complete, nextAfter: page.next_after, current: -1 };
    setSearch(state);
    if (state.offsets.length > 0) await goToMatch(state, 1);
  }

  async function goToMatch(state: SearchState, step: 1 | -1) {
    if (state.offsets.length === 0) return;
    let { offsets, more, nextAfter } = state;
    let next = state.current === -1 ? (step === 1 ? 0 : offsets.length - 1) : state.current + step;
    if (next >= offsets.length && more) {
      const page = await fetchPage(state.query, nextAfter);
      offsets = [...offsets, ...page.matches.map((m) => m.offset)];
      more = !page.complete;
      nextAfter = page.next_after;
    }
    next = (next + offsets.length) % offsets.length;
    setSearch({ ...state, offsets, more, nextAfter, current: next });
    openAt(offsets[next]);
  }

  return { search, runSearch, goToMatch };
}
