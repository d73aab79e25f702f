import { toSegments } from '../ansi';
import { STEP_ICONS, stepDuration } from '../format';
import type { Section } from '../sections';

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

/** One shown row of the log, placed at `top`: its link, its time if shown, its fold button if a step's header, its coloured text. */
export function LogLine({ line, index, top, height, classes, href, stamp, time, header, folded, onFold }: {
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
}) {
  return (
    <div class={classes} style={{ top: `${top}px`, height: `${height}px` }} data-index={index} onClick={header && ((event) => headerOnClick(event, header.step, onFold))}>
      <a class="line-link" href={href} aria-label="Link to this line" tabIndex={-1} />
      {stamp !== undefined && <span class="stamp" title={time == null ? 'time unknown' : new Date(time).toISOString()}>{stamp}</span>}
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
