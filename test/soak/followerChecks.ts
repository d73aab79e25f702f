import fs from 'node:fs';
import { compareCopy } from './copies.js';
import type { Follower } from './follower.js';
import type { Removals } from './removals.js';
import type { SoakReport } from './report.js';

/**
 * Every follower at the end: no protocol errors; a follower of a run that is still there has a
 * copy equal to its log file; a follower of a removed run was told (and if it read to `complete`
 * first, its copy equals the log as the soak kept it before the purge).
 */
export function checkFollowers(followers: Follower[], removals: Removals, logFile: (run: { projectId: number; id: number }) => string, report: SoakReport): void {
  report.followers = followers.length;
  report.timestamped = followers.filter((follower) => follower.timestamps).length;
  report.resumes = followers.reduce((sum, follower) => sum + follower.resumes, 0);
  report.purges = [...removals.removals.values()].filter((removal) => removal.reason === 'purged').length;
  report.retentionRemovals = removals.removals.size - report.purges;
  report.livePurgeFollowers = removals.live;
  report.toldLive = removals.toldLive;
  for (const follower of followers) {
    const label = `run ${follower.runId} (${follower.transport})`;
    if (follower.errors.length > 0) report.mismatches.push(`${label}: ${follower.errors.join('; ')}`);
    const fate = removals.checkFollower(follower);
    if (fate) report.mismatches.push(fate);
    const removal = removals.removals.get(follower.runId);
    if (removal) {
      report.removedFollowers.total++;
      if (follower.removed) report.removedFollowers.toldRemoved++;
      else if (follower.gone) report.removedFollowers.foundGone++;
      else if (follower.final !== null) report.removedFollowers.completeFirst++;
    }
    if (follower.final === null) {
      if (!removal && !follower.abandoned && follower.errors.length === 0) report.mismatches.push(`${label}: never got complete`);
      continue;
    }
    // A removed run's log: as the soak kept it before a purge (none kept for retention: not compared).
    const file = removal ? removal.snapshot : logFile({ projectId: follower.projectId, id: follower.runId });
    if (file === null) continue;
    const { bytes, mismatch } = compareCopy(follower, fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0)); // no file: cancelled before it started
    if (mismatch) report.mismatches.push(mismatch);
    report.bytesCompared += bytes;
  }
}
