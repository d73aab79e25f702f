import { useEffect, useState } from 'preact/hooks';
import type { Run } from '../api';

const ICONS: Record<string, string> = { pending: '○', running: '◐', completed: '✓', failed: '✗', cancelled: '⊘' };

function duration(step: Run['steps'][number]): string {
  if (!step.started_at) return '';
  const ms = (step.finished_at ? Date.parse(step.finished_at) : Date.now()) - Date.parse(step.started_at);
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The run's steps with status and duration (live while running); a started step opens its part of the log. */
export function StepBar({ run, onOpen }: { run: Run; onOpen: (offset: number) => void }) {
  const [, tick] = useState(0);
  const running = run.steps.some((step) => step.status === 'running');
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [running]);
  if (run.steps.length === 0) return null;
  return (
    <ol class="step-bar" aria-label="Steps">
      {run.steps.map((step) => (
        <li key={step.name} class={`step step-${step.status}`} data-testid={`step-${step.name}`}>
          <button type="button" disabled={step.log_start === null} onClick={() => step.log_start !== null && onOpen(step.log_start)} title={step.log_start === null ? 'Not started' : 'Show this step\'s part of the log'}>
            <span aria-hidden="true">{ICONS[step.status]}</span> {step.name} <span class="step-time">{duration(step)}</span>
            <span class="visually-hidden"> ({step.status})</span>
          </button>
        </li>
      ))}
    </ol>
  );
}
