import type { RunStatus } from '../api';

// An icon and a word as well as a colour: colour is never the only signal.
const ICONS: Record<RunStatus, string> = { pending: '◷', running: '▶', completed: '✔', failed: '✖', cancelled: '■' };

export function StatusBadge({ status }: { status: RunStatus }) {
  return (
    <span class={`status status-${status}`} data-status={status}>
      <span aria-hidden="true">{ICONS[status]}</span> {status}
    </span>
  );
}
