import type { RemovalReason } from '../../wire.js';
import type { PostgresStore } from './store.js';

/** The channel on which every change of a run is announced (payload: its id), for hubs to pass on. */
export const RUNS_CHANNEL = 'hub_runs';

/** The channel on which workers hear of work (a trigger sends it, migrations 010, 011): see parseWorkNotice. */
export const WORK_CHANNEL = 'hub_work';

/**
 * `claim:<run>`: that run can be claimed; `claimed:<run>`: it was; `cancel:<worker>`: that worker
 * has a cancel to read. A bare `claim` (no run) is what a database before migration 011 sends.
 */
export type WorkNotice = { kind: 'claim'; runId: number | null } | { kind: 'claimed'; runId: number } | { kind: 'cancel'; workerId: string };

export function parseWorkNotice(payload: string): WorkNotice | null {
  if (payload === 'claim') return { kind: 'claim', runId: null };
  const run = /^(claim|claimed):(\d+)$/.exec(payload);
  if (run) return { kind: run[1] as 'claim' | 'claimed', runId: Number(run[2]) };
  return payload.startsWith('cancel:') ? { kind: 'cancel', workerId: payload.slice('cancel:'.length) } : null;
}

/** Announces a change of run `runId`; one that cannot be sent is dropped. */
export function notifyRun(store: PostgresStore, runId: number): void {
  store.query('SELECT pg_notify($1, $2)', [RUNS_CHANNEL, String(runId)]).catch(() => {});
}

/** A removed run (its record is gone, so its id alone would say nothing): `removed:<project>:<run>:<reason>`. */
export async function notifyRemoved(store: PostgresStore, projectId: number, runId: number, reason: RemovalReason): Promise<void> {
  await store.query('SELECT pg_notify($1, $2)', [RUNS_CHANNEL, `removed:${projectId}:${runId}:${reason}`]).catch(() => {});
}

export type RunNotice = { kind: 'changed'; runId: number } | { kind: 'removed'; projectId: number; runId: number; reason: RemovalReason };

export function parseRunNotice(payload: string): RunNotice | null {
  const removed = /^removed:(\d+):(\d+):(purged|retention)$/.exec(payload);
  if (removed) return { kind: 'removed', projectId: Number(removed[1]), runId: Number(removed[2]), reason: removed[3] as RemovalReason };
  return /^\d+$/.test(payload) ? { kind: 'changed', runId: Number(payload) } : null;
}
