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
