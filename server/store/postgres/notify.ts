import type { PostgresStore } from './store.js';

/** The channel on which every change of a run is announced (payload: its id), for hubs to pass on. */
export const RUNS_CHANNEL = 'hub_runs';

export async function notifyRun(store: PostgresStore, runId: number): Promise<void> {
  await store.query('SELECT pg_notify($1, $2)', [RUNS_CHANNEL, String(runId)]).catch(() => {});
}
