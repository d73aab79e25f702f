import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, isActive, runPath, type Run } from '../api';
import type { MarkerSection } from '../sections';
import type { SectionPage } from '../../../server/wire';
import { runDetached } from '../report';

const PAGE = 5000;
/** The most sections the page holds: a log with more shows the first ones folded, the rest as lines. */
export const MAX_SHOWN_SECTIONS = 20_000;

/**
 * The sections a run's steps mark (GitHub groups, GitLab and Buildkite sections): read a page at a
 * time from the hub's index, then kept current by the `sections` messages of the log's
 * subscription (`merge`); read again when that subscription (re)starts and once the run has ended.
 */
export function useMarkerSections(run: Run) {
  const sections = useRef(new Map<number, MarkerSection>());
  const [version, setVersion] = useState(0);
  const loading = useRef<Promise<void> | null>(null);
  const again = useRef(false);
  const runId = useRef(run.id);

  /** A section only closes and unfolds: what is known of that is kept, whichever came first. */
  function merge(list: readonly MarkerSection[]) {
    for (const section of list) {
      if (section.id > MAX_SHOWN_SECTIONS) continue;
      const known = sections.current.get(section.id);
      sections.current.set(section.id, known ? { ...section, end: section.end ?? known.end, ended_at: section.ended_at ?? known.ended_at, collapsed: section.collapsed && known.collapsed } : section);
    }
    if (list.length > 0) setVersion((v) => v + 1);
  }

  /** Reads every page; asked again while reading, reads once more after (the run may have ended meanwhile). */
  function reload() {
    if (loading.current) {
      again.current = true;
      return;
    }
    loading.current = (async () => {
      const id = run.id;
      for (let after = 0; after < MAX_SHOWN_SECTIONS; ) {
        const page = await api<SectionPage>('GET', `${runPath(run)}/sections?after=${after}&limit=${PAGE}`);
        if (runId.current !== id) return;
        merge(page.sections);
        if (page.sections.length === 0) return;
        after = page.next;
      }
    })().finally(() => {
      loading.current = null;
      if (again.current) {
        again.current = false;
        reload();
      }
    });
    runDetached('loading the log\'s sections', loading.current);
  }

  useEffect(() => {
    runId.current = run.id;
    sections.current = new Map();
    setVersion((v) => v + 1);
    reload();
  }, [run.id]);

  // Sections left open close where the run ends: read once more then.
  const active = isActive(run);
  useEffect(() => {
    if (!active) reload();
  }, [run.id, active]);

  const list = useMemo(() => [...sections.current.values()].sort((a, b) => a.id - b.id), [version]);
  return { list, merge, reload };
}
