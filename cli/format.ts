import type { Run } from '../server/wire.js';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => (row[column] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd()).join('\n') + '\n';
}

export function describeRun(run: Run): string {
  const step = run.current_step ? `, step ${run.progress_current + (run.status === 'running' ? 1 : 0)}/${run.progress_total} ${run.current_step}` : '';
  const why = run.error_message ? `: ${run.error_message}` : '';
  return `run #${run.id} ${run.status} (scope ${run.scope}${step})${why}`;
}

export function duration(run: Run): string {
  if (!run.started_at) return '';
  const ms = (run.finished_at ? Date.parse(run.finished_at) : Date.now()) - Date.parse(run.started_at);
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
