import type { Section as MarkerSection } from '../../server/wire';

/** The most sections the page holds at once: a window of ids around what the reader looks at. */
export const MAX_SHOWN_SECTIONS = 20_000;

/** A section holds byte `offset` of the log (from its header on). */
const holds = (section: MarkerSection, offset: number) => section.start < offset && (section.end === null || offset < section.end);

/** A section only closes and unfolds: what is known of that is kept, whichever came first. */
const mergeOne = (known: MarkerSection | undefined, section: MarkerSection): MarkerSection =>
  known ? { ...section, end: section.end ?? known.end, ended_at: section.ended_at ?? known.ended_at, collapsed: section.collapsed && known.collapsed } : section;

/**
 * The marked sections a log view holds: the ids [first, last] as the index numbers them (in the
 * log's order), at most MAX_SHOWN_SECTIONS, and the sections still open where the window starts
 * (the ancestors of `first`, at most 32), which fold and indent the lines at its top. A log with
 * any number of sections is shown through such a window, loaded again around the reader's place
 * when it no longer covers it (see useMarkerSections); sections a live run opens extend it at its
 * end, and its oldest go past the limit.
 */
export class SectionWindow {
  private readonly sections = new Map<number, MarkerSection>();
  /** ids below `first` kept because they hold the window's start */
  private readonly ancestors = new Set<number>();
  first = 1;
  last = 0;
  /** `last` was the index's last section when read: sections a live run opens next extend the window */
  atEnd = false;

  /** A window read from the index: `sections`, ids from `first` in order; `ancestors`: those open at its start. */
  static of(first: number, sections: readonly MarkerSection[], ancestors: readonly MarkerSection[], atEnd: boolean): SectionWindow {
    const window = new SectionWindow();
    window.first = first;
    window.last = first - 1;
    for (const section of ancestors) {
      window.sections.set(section.id, section);
      window.ancestors.add(section.id);
    }
    for (const section of sections) {
      if (section.id !== window.last + 1) break; // ids are contiguous; anything else is not trusted
      window.sections.set(section.id, section);
      window.last = section.id;
    }
    window.atEnd = atEnd;
    return window;
  }

  get size(): number {
    return this.sections.size;
  }

  /** The sections held, by id. */
  list(): MarkerSection[] {
    return [...this.sections.values()].sort((a, b) => a.id - b.id);
  }

  get(id: number): MarkerSection | undefined {
    return this.sections.get(id);
  }

  /**
   * Sections a live run's messages say changed: those held are updated, new ones right after the
   * end extend it (the oldest then go past the limit); others are not this window's. Returns
   * whether anything held changed.
   */
  merge(list: readonly MarkerSection[]): boolean {
    let changed = false;
    for (const section of [...list].sort((a, b) => a.id - b.id)) {
      if (this.sections.has(section.id)) {
        this.sections.set(section.id, mergeOne(this.sections.get(section.id), section));
        changed = true;
      } else if (this.atEnd && section.id === this.last + 1) {
        this.sections.set(section.id, section);
        this.last = section.id;
        changed = true;
      } else if (this.atEnd && section.id > this.last + 1) {
        this.atEnd = false; // a gap: what lies between is read from the index when the reader gets there
      }
    }
    this.trimFront();
    return changed;
  }

  /** Past the limit, the oldest ids go; one still open where the window now starts is kept as an ancestor. */
  private trimFront(): void {
    while (this.last - this.first + 1 > MAX_SHOWN_SECTIONS) {
      const dropped = this.sections.get(this.first);
      this.first++;
      const start = this.sections.get(this.first)?.start ?? Infinity;
      if (dropped && holds(dropped, start)) this.ancestors.add(dropped.id);
      else if (dropped) this.sections.delete(dropped.id);
      for (const id of this.ancestors) {
        const ancestor = this.sections.get(id);
        if (!ancestor || !holds(ancestor, start)) {
          this.ancestors.delete(id);
          this.sections.delete(id);
        }
      }
    }
  }

  /**
   * The window holds every section a view of bytes [top, bottom] shows: none starts in that range
   * outside it (and those open at `top` are its own or its ancestors).
   */
  covers(top: number, bottom: number): boolean {
    return this.reaches(top) && this.extendsTo(bottom);
  }

  /** Byte `offset` lies within the window's stretch of the log (it starts at or before it, and goes on to or past it). */
  holds(offset: number): boolean {
    return this.reaches(offset) && this.extendsTo(offset);
  }

  private reaches(offset: number): boolean {
    const first = this.sections.get(this.first);
    return this.first <= 1 || (first !== undefined && first.start <= offset);
  }

  private extendsTo(offset: number): boolean {
    const last = this.sections.get(this.last);
    return this.atEnd || (last !== undefined && last.start >= offset);
  }
}
