/** setTimeout takes at most 2^31 - 1 ms (24.8 days); a longer delay fires after 1 ms instead. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

/** A timeout of any length: waits in pieces no longer than setTimeout allows. */
export function setLongTimeout(callback: () => void, delayMs: number): LongTimer {
  const deadline = Date.now() + delayMs;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = deadline - Date.now();
    timer = left > MAX_DELAY_MS ? setTimeout(arm, MAX_DELAY_MS) : setTimeout(callback, Math.max(0, left));
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
