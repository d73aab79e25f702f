import type { Run } from '../server/wire.js';
import { CliError, type HubClient } from './hubClient.js';

/** A page of the log as text, each line after its RFC 3339 time (as `docker logs -t` prints). */
export interface StampedPage {
  text: Buffer;
  /** where the next page starts */
  next: number;
  /** the run has ended and this page reached its end */
  complete: boolean;
}

/**
 * How a read of the log from byte `offset` failed, as the follower acts on it: `log_reset` (the log
 * is shorter now: stop), `unreachable` (the hub restarts or is busy: try again), else an error.
 * `shorter`: the status the hub answers an offset past the end with.
 */
export function checkLogRead(response: Response, run: Pick<Run, 'id'>, offset: number, shorter: number): void {
  if (response.status === shorter) throw new CliError(`the log of run ${run.id} is shorter than byte ${offset}: it was truncated or replaced`, 'log_reset');
  if (response.status >= 500 || response.status === 429) throw new CliError(`HTTP ${response.status}`, 'unreachable');
  if (!response.ok) throw new CliError(`reading the log: HTTP ${response.status}`, 'http_error', response.status);
}

/**
 * The lines from byte `offset` on (at most 1 MiB of them), with their times: the hub's text pages
 * with `timestamps=1`. The times are the runner's records, so the log itself is not changed.
 */
export async function fetchStampedPage(client: HubClient, run: Pick<Run, 'id' | 'project_id'>, offset: number): Promise<StampedPage> {
  const response = await client.fetch(`/api/projects/${run.project_id}/runs/${run.id}/logs?offset=${offset}&timestamps=1`, { headers: { accept: 'text/plain' } });
  checkLogRead(response, run, offset, 400);
  const text = Buffer.from(await response.arrayBuffer());
  return { text, next: Number(response.headers.get('x-log-next')), complete: response.headers.get('x-log-complete') === 'true' };
}
