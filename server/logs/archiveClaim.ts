import type { Redis } from './redisClient.js';
import { tag } from './redisLogStream.js';

/** How long a worker's claim on archiving a log holds without being renewed (it renews every third of it). */
export const ARCHIVE_CLAIM_S = 15;

const claimKey = (runId: number) => `${tag(runId)}:archiving`;

/**
 * Runs `archive` while holding a claim on archiving the run's log (a key beside its stream, with a
 * time to live): the hubs' sweeper leaves a log to its worker while the claim holds, so it can
 * sweep soon after a run's end without uploading a log twice while its worker is still on it (a big
 * one takes minutes). A worker that dies lets the claim lapse, and the sweeper takes over.
 */
export async function whileArchiving<T>(redis: Redis, runId: number, holder: string, archive: () => Promise<T>): Promise<T> {
  const claim = () => redis.set(claimKey(runId), holder, 'EX', ARCHIVE_CLAIM_S);
  await claim();
  const renew = setInterval(() => {
    claim().catch(() => {}); // a lapse lets the sweeper archive it too: the same bytes, whole
  }, (ARCHIVE_CLAIM_S * 1000) / 3);
  renew.unref();
  try {
    return await archive();
  } finally {
    clearInterval(renew);
  }
}

/** Whether a worker is archiving the run's log now. */
export async function isBeingArchived(redis: Redis, runId: number): Promise<boolean> {
  return (await redis.exists(claimKey(runId))) === 1;
}
