import type { RunnerProcess } from './runnerProcess.js';
import type { SpawnRunner } from './spawnRunner.js';

const REFILL_DELAY_MS = 50;

/**
 * Keeps one runner started ahead of time, so a run does not wait for Node to start (115 ms on a
 * small machine).
 */
export class RunnerPool {
  private idle: RunnerProcess | null = null;
  private refill: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly spawnRunner: SpawnRunner) {}

  /** An idle runner: the warm one if it is still alive, else a new one (rejects if none can start). */
  take(): Promise<RunnerProcess> {
    const warm = this.idle;
    this.idle = null;
    this.scheduleRefill();
    if (warm && warm.exited === null) return Promise.resolve(warm);
    return this.spawnRunner();
  }

  /** A runner taken and not used after all: kept as the warm one (or let go, if there is one). */
  putBack(runner: RunnerProcess): void {
    if (!this.closed && !this.idle && runner.exited === null) {
      this.idle = runner;
      if (this.refill) {
        clearTimeout(this.refill);
        this.refill = null;
      }
    } else runner.send(null);
  }

  /** Starts the first idle runner, shortly after start-up. */
  prime(): void {
    this.scheduleRefill();
  }

  private scheduleRefill(): void {
    if (this.closed || this.refill) return;
    // Just after the current request, so its runner's start does not compete with this one's.
    this.refill = setTimeout(() => {
      this.refill = null;
      if (this.closed || this.idle) return;
      this.spawnRunner().then(
        (runner) => {
          if (this.closed || this.idle) runner.send(null);
          else this.idle = runner;
        },
        () => {}, // the next take() spawns one itself, and reports the error there
      );
    }, REFILL_DELAY_MS);
    this.refill.unref();
  }

  /** Ends the waiting runner (closing its stdin makes it exit). Safe to call twice. */
  close(): void {
    this.closed = true;
    if (this.refill) clearTimeout(this.refill);
    this.idle?.send(null);
    this.idle = null;
  }
}
