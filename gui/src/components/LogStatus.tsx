import type { CompleteMessage } from '../socket';

/** The line under the log: how much is loaded (and let go), whether it follows, how the run ended. */
export function LogStatus({ lines, dropped, mode, follow, complete }: {
  lines: number;
  /** older lines let go while following; shown while live */
  dropped: number;
  mode: 'live' | 'window';
  follow: boolean;
  complete: CompleteMessage | null;
}) {
  return (
    <div class="log-status">
      <span data-testid="line-count">{lines.toLocaleString('en')} lines loaded</span>
      {dropped > 0 && mode === 'live' && <span data-testid="dropped">{dropped.toLocaleString('en')} older lines let go (they load again on scroll)</span>}
      <span>{mode === 'window' ? 'Showing part of the log' : follow ? 'Following' : 'Paused: scrolled up'}</span>
      {complete && <span data-testid="log-complete">Ended: {complete.status}{complete.exit_code !== null ? ` (exit ${complete.exit_code})` : ''}</span>}
    </div>
  );
}
