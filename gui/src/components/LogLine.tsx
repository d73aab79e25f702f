import { toSegments } from '../ansi';
import { STEP_ICONS, sectionDuration, stepDuration } from '../format';
import type { MarkerFold, MarkerSection, Section } from '../sections';

type Step = Section['step'];

/**
 * A click on a step's header line (anywhere but a link in it) folds or unfolds the step, as on GitLab
 * and GitHub; its button's click, from the mouse or the keyboard, comes here too. Selecting the
 * line's text with the mouse is not such a click.
 */
function headerOnClick(event: MouseEvent, step: Step, onFold: (step: Step) => void) {
  if ((event.target as Element).closest('a')) return;
  // (a click from the keyboard, on the button, has no mouse behind it: detail 0)
  const selection = getSelection();
  if (event.detail > 0 && selection && !selection.isCollapsed && (event.currentTarget as Node).contains(selection.anchorNode)) return;
  onFold(step);
}

/** A marked section's header: its name (not the marker and its escape codes), folding as a step's does, with its duration. */
function MarkerHeader({ fold, folded, onFold }: { fold: MarkerFold; folded: boolean; onFold: (marker: MarkerSection) => void }) {
  const { marker } = fold;
  return (
    <>
      <button type="button" class="fold" style={{ marginLeft: `${(marker.depth + 1) * 1.2}ch` }} aria-expanded={!folded} aria-label={`${folded ? 'Unfold' : 'Fold'} section ${marker.name}`} onClick={(event) => {
        event.stopPropagation();
        onFold(marker);
      }}>
        {folded ? '▸' : '▾'}
      </button>
      <span class="marker-name">{marker.name}</span>
      <span class="section-status">{marker.end === null ? ' ◐' : ''} {sectionDuration(marker)}</span>
    </>
  );
}

/** One shown row of the log, placed at `top`: its link, its time if shown, its fold button if a step's header, its coloured text. */
export function LogLine({ line, index, top, height, classes, href, stamp, time, header, folded, onFold, marker, onMarkerFold }: {
  line: string;
  index: number;
  top: number;
  height: number;
  classes: string;
  href: string;
  /** the line's time as shown ('' when unknown), when times are shown */
  stamp?: string;
  /** the line's time (Unix ms), for the full date on hover */
  time?: number | null;
  header?: Section;
  folded: boolean;
  onFold: (step: Step) => void;
  /** a marked section whose header this line is */
  marker?: MarkerFold;
  onMarkerFold?: (marker: MarkerSection) => void;
}) {
  const stampSpan = stamp !== undefined && <span class="stamp" title={time == null ? 'time unknown' : new Date(time).toISOString()}>{stamp}</span>;
  if (marker && onMarkerFold) {
    return (
      <div class={`${classes} marker-header${marker.marker.muted ? ' muted' : ''}`} style={{ top: `${top}px`, height: `${height}px` }} data-index={index} data-section={marker.marker.id} onClick={(event) => {
        if ((event.target as Element).closest('a')) return;
        const selection = getSelection();
        if (event.detail > 0 && selection && !selection.isCollapsed) return;
        onMarkerFold(marker.marker);
      }}>
        <a class="line-link" href={href} aria-label="Link to this line" tabIndex={-1} />
        {stampSpan}
        <MarkerHeader fold={marker} folded={folded} onFold={onMarkerFold} />
      </div>
    );
  }
  return (
    <div class={classes} style={{ top: `${top}px`, height: `${height}px` }} data-index={index} onClick={header && ((event) => headerOnClick(event, header.step, onFold))}>
      <a class="line-link" href={href} aria-label="Link to this line" tabIndex={-1} />
      {stampSpan}
      {header && (
        <button type="button" class="fold" aria-expanded={!folded} aria-label={`${folded ? 'Unfold' : 'Fold'} step ${header.step.name}`}>
          {folded ? '▸' : '▾'}
        </button>
      )}
      {toSegments(line).map((segment, i) => (
        <span
          key={i}
          style={{ color: segment.color, background: segment.background, fontWeight: segment.bold ? 'bold' : undefined, fontStyle: segment.italic ? 'italic' : undefined, textDecoration: segment.underline ? 'underline' : undefined }}
        >
          {segment.text}
        </span>
      ))}
      {header && <span class={`section-status step-${header.step.status}`}> {STEP_ICONS[header.step.status]} {stepDuration(header.step)}</span>}
    </div>
  );
}
