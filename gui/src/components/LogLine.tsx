import { toSegments } from '../ansi';
import { STEP_ICONS, stepDuration } from '../format';
import type { Section } from '../sections';

type Step = Section['step'];

/** One shown row of the log, placed at `top`: its link, its fold button if a step's header, its coloured text. */
export function LogLine({ line, index, top, height, classes, href, header, folded, onFold }: {
  line: string;
  index: number;
  top: number;
  height: number;
  classes: string;
  href: string;
  header?: Section;
  folded: boolean;
  onFold: (step: Step) => void;
}) {
  return (
    <div class={classes} style={{ top: `${top}px`, height: `${height}px` }} data-index={index}>
      <a class="line-link" href={href} aria-label="Link to this line" tabIndex={-1} />
      {header && (
        <button type="button" class="fold" aria-expanded={!folded} aria-label={`${folded ? 'Unfold' : 'Fold'} step ${header.step.name}`} onClick={() => onFold(header.step)}>
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
