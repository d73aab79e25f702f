import type { Run } from './api';

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const seconds = Math.floor(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h ${m}m ${s}s` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

/** How long a run took, or has been going. */
export function runDuration(run: Run, now = Date.now()): string {
  if (!run.started_at) return '–';
  const end = run.finished_at ? Date.parse(run.finished_at) : now;
  return formatDuration(end - Date.parse(run.started_at));
}

export const formatTime = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '–');

export const STEP_ICONS: Record<string, string> = { pending: '○', running: '◐', completed: '✓', failed: '✗', cancelled: '⊘' };

/** How long a step ran, or has been running. */
export function stepDuration(step: Run['steps'][number]): string {
  if (!step.started_at) return '';
  const ms = (step.finished_at ? Date.parse(step.finished_at) : Date.now()) - Date.parse(step.started_at);
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** How long a marked section lasted, or has lasted so far ('' when its times are unknown). */
export function sectionDuration(section: { started_at: number | null; ended_at: number | null; end: number | null }): string {
  if (section.started_at === null || (section.end !== null && section.ended_at === null)) return '';
  const ms = (section.ended_at ?? Date.now()) - section.started_at;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
