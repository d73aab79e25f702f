import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** What pollers are told to wait (GitLab's `Poll-Interval`): the base, longer while the server is loaded. */
const BASE_MS = 1000;
/** An event loop whose mean delay over the last window exceeds this is loaded. */
const LOADED_MEAN_DELAY_MS = 20;
const BUSY_FACTOR = 5;
const WINDOW_MS = 5000;

/**
 * `Poll-Interval` for HTTP log responses: -1 once the run's log is complete (stop polling), 0 when
 * a finished run has more to page through (go on at once), else the base interval, multiplied while
 * the event loop is slow, so a crowd of 5-second pollers backs off instead of piling on.
 */
export class PollInterval {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private loaded = false;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.delay.enable();
    this.timer = setInterval(() => {
      this.loaded = this.delay.mean / 1e6 > LOADED_MEAN_DELAY_MS;
      this.delay.reset();
    }, WINDOW_MS).unref();
  }

  header(state: { finished: boolean; complete: boolean }): string {
    if (state.finished && state.complete) return '-1';
    if (state.finished) return '0';
    return String(this.loaded ? BASE_MS * BUSY_FACTOR : BASE_MS);
  }

  close(): void {
    clearInterval(this.timer);
    this.delay.disable();
  }
}
