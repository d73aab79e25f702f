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
 * The lines from byte `offset` on (at most 1 MiB of them), with their times: the hub's text pages
 * with `timestamps=1`. The times are the runner's records, so the log itself is not changed.
 */
export async function fetchStampedPage(client: HubClient, run: Pick<Run, 'id' | 'project_id'>, offset: number): Promise<StampedPage> {
  const response = await client.fetch(`/api/projects/${run.project_id}/runs/${run.id}/logs?offset=${offset}&timestamps=1`, { headers: { accept: 'text/plain' } });
  if (response.status === 400) throw new CliError(`the log of run ${run.id} is shorter than byte ${offset}: it was truncated or replaced`, 'log_reset');
  if (response.status >= 500 || response.status === 429) throw new CliError(`HTTP ${response.status}`, 'unreachable');
  if (!response.ok) throw new CliError(`reading the log: HTTP ${response.status}`, 'http_error', response.status);
  const text = Buffer.from(await response.arrayBuffer());
  return { text, next: Number(response.headers.get('x-log-next')), complete: response.headers.get('x-log-complete') === 'true' };
}
