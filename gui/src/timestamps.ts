import { useRemembered } from './remembered';

/**
 * How the log view shows when each line was written: not at all, as the time of day, or as the
 * time since the run started. The choice is remembered in this browser.
 */
export type TimestampChoice = 'off' | 'clock' | 'elapsed';

/** The choice, off by default, remembered in this browser. */
export const useTimestamps = () => useRemembered<TimestampChoice>('run-hub-timestamps', ['off', 'clock', 'elapsed'], 'off');

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** `14:03:07.412` (local time), or `+1:02.345` / `+1:02:03.456` since `start`; '' when unknown. */
export function formatStamp(time: number | null | undefined, choice: TimestampChoice, start: number | null): string {
  if (time == null || choice === 'off') return '';
  if (choice === 'clock') {
    const date = new Date(time);
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  }
  if (start === null) return '';
  const elapsed = Math.max(0, time - start);
  const hours = Math.floor(elapsed / 3_600_000);
  const minutes = Math.floor((elapsed % 3_600_000) / 60_000);
  const seconds = Math.floor((elapsed % 60_000) / 1000);
  const millis = elapsed % 1000;
  return `+${hours > 0 ? `${hours}:${pad(minutes)}` : minutes}:${pad(seconds)}.${pad(millis, 3)}`;
}
