import { useEffect, useState } from 'preact/hooks';
import { api, isActive, type Run } from '../api';
import { runDuration } from '../format';
import { StatusBadge } from './StatusBadge';
import { runDetached } from '../report';

/** Status, current step, a progress bar, elapsed time and a cancel button with confirmation. */
export function ActiveRun({ run, showLink = true }: { run: Run; showLink?: boolean }) {
  const [, tick] = useState(0);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!isActive(run)) return;
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [run.status]);

  // The step it failed at, and every one after it, in a new run (queued if another is active).
  async function rerunFrom(step: string) {
    try {
      const again = await api<Run>('POST', `/api/projects/${run.project_id}/runs`, { from_step: step, triggered_by: 'gui', if_busy: 'queue' });
      location.hash = `#/projects/${run.project_id}/runs/${again.id}`;
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function cancel() {
    if (!confirm(`Cancel run #${run.id}? Its running step is stopped.`)) return;
    try {
      await api('DELETE', `/api/projects/${run.project_id}/runs/${run.id}`);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section class="active-run" aria-label={`Run ${run.id}`} data-testid="active-run">
      <div class="active-run-head">
        <StatusBadge status={run.status} />
        {showLink ? <a href={`#/projects/${run.project_id}/runs/${run.id}`}>Run #{run.id}</a> : <strong>Run #{run.id}</strong>}
        <span>scope <strong>{run.scope}</strong></span>
        <span>step <strong data-testid="current-step">{run.current_step ?? '–'}</strong></span>
        <span>elapsed <span data-testid="elapsed">{runDuration(run)}</span></span>
        {isActive(run) && <button type="button" class="danger" onClick={() => runDetached('cancelling the run', cancel())}>Cancel run</button>}
        {run.status === 'failed' && run.current_step && <button type="button" onClick={() => runDetached('re-running the run', rerunFrom(run.current_step!))}>Re-run from {run.current_step}</button>}
      </div>
      <label class="progress">
        <span>{run.progress_current} of {run.progress_total} steps</span>
        <progress max={run.progress_total || 1} value={run.progress_current} />
      </label>
      {run.error_message && <p class="run-error" role="status">{run.error_message}</p>}
      {error && <p role="alert" class="field-error">{error}</p>}
    </section>
  );
}
