import { useState } from 'preact/hooks';
import type { SearchState } from './useLogSearch';
import type { TimestampChoice } from '../timestamps';
import { runDetached } from '../report';

/** The log's toolbar: search over the whole log, folding, loading, following, times, wrapping, the raw log. */
export function LogToolbar({ search, runSearch, goToMatch, loadedMatches, hasSections, setAllFolds, loadEarlier, jumpToEnd, timestamps, setTimestamps, wrap, setWrap, rawHref }: {
  search: SearchState;
  runSearch: (text: string) => Promise<void>;
  goToMatch: (state: SearchState, step: 1 | -1) => Promise<void>;
  /** matches among the loaded lines */
  loadedMatches: number;
  hasSections: boolean;
  setAllFolds: (folded: boolean) => void;
  /** offered while earlier lines can be loaded */
  loadEarlier?: () => void;
  /** offered while not following the end */
  jumpToEnd?: () => void;
  timestamps: TimestampChoice;
  setTimestamps: (choice: TimestampChoice) => void;
  wrap: boolean;
  setWrap: (on: boolean) => void;
  rawHref: string;
}) {
  const [query, setQuery] = useState('');
  const count = search.offsets.length;
  return (
    <div class="log-toolbar">
      <label>
        <span class="visually-hidden">Search the whole log</span>
        <input
          type="search"
          placeholder="Search the whole log"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
          onKeyDown={(e) => {
            if (e.key !== 'Enter') return;
            if (query.trim() === search.query && count > 0) runDetached('going to a match', goToMatch(search, e.shiftKey ? -1 : 1));
            else runDetached('searching the log', runSearch(query));
          }}
        />
      </label>
      <button type="button" onClick={() => runDetached('going to a match', goToMatch(search, -1))} disabled={count === 0} aria-label="Previous match">↑</button>
      <button type="button" onClick={() => runDetached('going to a match', goToMatch(search, 1))} disabled={count === 0} aria-label="Next match">↓</button>
      <span class="match-count" aria-live="polite" data-testid="match-count" data-loaded-matches={loadedMatches} title={search.query ? `${loadedMatches} among the loaded lines` : undefined}>
        {search.query ? `${search.current >= 0 ? `${search.current + 1} of ` : ''}${count}${search.more ? '+' : ''} ${count === 1 && !search.more ? 'match' : 'matches'}` : ''}
      </span>
      <span class="spacer" />
      <label class="wrap-toggle">
        Times{' '}
        <select value={timestamps} onChange={(e) => setTimestamps((e.target as HTMLSelectElement).value as TimestampChoice)}>
          <option value="off">Off</option>
          <option value="clock">Time of day</option>
          <option value="elapsed">Since start</option>
        </select>
      </label>
      <label class="wrap-toggle">
        <input type="checkbox" checked={wrap} onChange={(e) => setWrap((e.target as HTMLInputElement).checked)} /> Wrap lines
      </label>
      {hasSections && <button type="button" onClick={() => setAllFolds(false)}>Expand all</button>}
      {hasSections && <button type="button" onClick={() => setAllFolds(true)}>Collapse all</button>}
      {loadEarlier && <button type="button" onClick={loadEarlier}>Load earlier lines</button>}
      {jumpToEnd && <button type="button" class="primary" onClick={jumpToEnd}>Jump to end</button>}
      <a href={rawHref} target="_blank" rel="noopener">Raw log</a>
    </div>
  );
}
