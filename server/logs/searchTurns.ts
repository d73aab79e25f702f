/**
 * Text searches share the event loop: together they work at most TURN_MS between two turns of the
 * loop (plus the one slice that crosses it), whatever the number of searches, so what waits for the
 * loop (a health check, a log page) waits for about that long. A search that finds the turn's time
 * used up queues; each turn of the loop lets the next one in (round robin). A regex runs in its own
 * thread and takes no turns.
 */
const TURN_MS = 2;

let used = 0;
let resetQueued = false;
const waiting: (() => void)[] = [];

/** Waits until this turn of the loop has time left for searches. */
export async function takeTurn(): Promise<void> {
  if (used < TURN_MS && waiting.length === 0) return;
  await new Promise<void>((resolve) => waiting.push(resolve));
}

/** Counts `spentMs` of this turn's time; the next turn of the loop starts afresh. */
export function giveTurn(spentMs: number): void {
  used += spentMs;
  if (resetQueued) return;
  resetQueued = true;
  setImmediate(startTurn);
}

function startTurn(): void {
  resetQueued = false;
  used = 0;
  waiting.shift()?.();
}
