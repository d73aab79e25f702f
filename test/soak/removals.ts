import fs from 'node:fs';
import path from 'node:path';
import type { TestHub } from '../helpers/hub.js';
import { waitFor } from '../helpers/hub.js';
import { Follower } from './follower.js';

/** How long a follower connected when its run was removed may take to be told (its 1.5 s pause, then the buffered bytes). */
const TELL_WITHIN_MS = 6_000;
/** Slow followers read nothing for this long after they connect (the server's buffers fill). */
const SLOW_MS = 1500;

export interface Removal {
  projectId: number;
  runId: number;
  reason: 'purged' | 'retention';
  at: number;
  /** the log as it was before a purge (a retention removal is not foreseen: none) */
  snapshot: string | null;
}

/**
 * Purges finished runs while clients follow them, and watches each follower that was connected
 * when its run went: it must be told (`run_removed`, or `complete` that was already on its way)
 * within TELL_WITHIN_MS unless the soak itself cut its connection meanwhile.
 */
export class Removals {
  readonly removals = new Map<number, Removal>();
  readonly mismatches: string[] = [];
  /** followers connected at a purge, and how many were told */
  live = 0;
  toldLive = 0;
  private readonly watches: Promise<void>[] = [];

  constructor(private readonly snapshotDir: string) {
    fs.mkdirSync(snapshotDir, { recursive: true });
  }

  /**
   * Purges `run` (finished) after adding a slow WebSocket and a slow SSE follower to it; checks
   * HTTP then answers 404 for its record and its log.
   */
  async purge(hub: TestHub, run: { projectId: number; id: number }, logFile: string, followers: Follower[]): Promise<boolean> {
    const snapshot = path.join(this.snapshotDir, `${run.id}.log`);
    if (!fs.existsSync(logFile)) return false;
    fs.copyFileSync(logFile, snapshot);
    for (const transport of ['ws', 'sse'] as const) {
      const follower = new Follower(run.projectId, run.id, transport, null);
      follower.slowUntil = Date.now() + SLOW_MS;
      followers.push(follower);
      follower.connect(hub.url);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const connected = followers.filter((follower) => follower.runId === run.id && follower.connected && !follower.done);
    const at = Date.now();
    const { status, body } = await hub.api('DELETE', `/api/projects/${run.projectId}/runs/${run.id}?purge=true`);
    if (status === 404) return false; // removed by retention meanwhile
    if (status !== 204) throw new Error(`purge answered ${status}: ${JSON.stringify(body)}`);
    this.removals.set(run.id, { projectId: run.projectId, runId: run.id, reason: 'purged', at, snapshot });
    for (const [what, url] of [['record', ''], ['log', '/logs?offset=0'], ['search', '/logs/search?q=a']]) {
      const answer = await hub.api('GET', `/api/projects/${run.projectId}/runs/${run.id}${url}`);
      if (answer.status !== 404) this.mismatches.push(`run ${run.id}: its ${what} answered ${answer.status} after the purge`);
    }
    for (const follower of connected) this.watch(follower, at);
    return true;
  }

  private watch(follower: Follower, removedAt: number): void {
    this.live++;
    const label = `run ${follower.runId} (${follower.transport})`;
    this.watches.push(waitFor(() => follower.done || follower.droppedAt > removedAt, `${label} to be told`, TELL_WITHIN_MS, 100).then(
      () => {
        if (follower.done) this.toldLive++;
      },
      () => {
        this.mismatches.push(`${label}: connected when its run was purged, told nothing within ${TELL_WITHIN_MS / 1000} s`);
        follower.abandoned = true;
        follower.drop();
      },
    ));
  }

  /** Runs the soak did not purge but that are gone: removed by retention (found at the end). */
  noteRetention(projectId: number, runId: number): void {
    if (!this.removals.has(runId)) this.removals.set(runId, { projectId, runId, reason: 'retention', at: 0, snapshot: null });
  }

  async settle(): Promise<void> {
    await Promise.all(this.watches);
  }

  /**
   * A follower's end against its run's fate: a follower of a run that is still there ends with
   * `complete`; of a removed run, with `complete` (it read to the end first), `run_removed` with
   * the right reason, or `not_found`/404 when it came back after the removal.
   */
  checkFollower(follower: Follower): string | null {
    const removal = this.removals.get(follower.runId);
    const label = `run ${follower.runId} (${follower.transport})`;
    if (!removal) {
      if (follower.removed || follower.gone) return `${label}: told its run was removed (${follower.removed ?? 'not found'}), but it is there`;
      return null;
    }
    if (follower.abandoned) return null; // reported when it happened
    if (!follower.done) return `${label}: its run was removed (${removal.reason}); the client was never told`;
    if (follower.removed && follower.removed !== removal.reason) return `${label}: told run_removed "${follower.removed}", removed by ${removal.reason}`;
    return null;
  }
}
