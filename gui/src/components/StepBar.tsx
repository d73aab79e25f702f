import { useEffect, useState } from 'preact/hooks';
import type { Run } from '../api';
import { STEP_ICONS, stepDuration } from '../format';

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
            <span aria-hidden="true">{STEP_ICONS[step.status]}</span> {step.name} <span class="step-time">{stepDuration(step)}</span>
            <span class="visually-hidden"> ({step.status})</span>
          </button>
        </li>
      ))}
    </ol>
  );
}
