import path from 'node:path';
import { FSWatcher } from 'chokidar';

type Hint = () => void;

const SAFETY_POLL_MS = 250;

/**
 * One chokidar watcher for every followed log. Its events are hints, never data: each one makes the
 * run's reader read from its offset to the end of the file. We listen to `raw` (every fs.watch event,
 * unthrottled) because chokidar throttles `change` to one per 50 ms with no trailing event, which
 * delays lines and can leave the end of a burst unsignalled. A slow poll covers missed events and
 * files that do not exist yet.
 */
export class LogWatcher {
  private readonly watcher = new FSWatcher({ persistent: false, ignoreInitial: true, atomic: false });
  private readonly hints = new Map<string, Hint>();
  private readonly poll: NodeJS.Timeout;

  constructor() {
    const dispatch = (file: unknown) => {
      if (typeof file === 'string') this.hints.get(path.resolve(file))?.();
    };
    this.watcher.on('raw', (_event, _name, details) => dispatch((details as { watchedPath?: string } | undefined)?.watchedPath));
    this.watcher.on('add', dispatch);
    this.watcher.on('change', dispatch);
    this.watcher.on('error', () => {}); // a vanished folder must not crash the hub; the poll goes on
    this.poll = setInterval(() => {
      for (const hint of this.hints.values()) hint();
    }, SAFETY_POLL_MS);
    this.poll.unref();
  }

  watch(file: string, hint: Hint): void {
    const absolute = path.resolve(file);
    this.hints.set(absolute, hint);
    this.watcher.add(absolute);
  }

  unwatch(file: string): void {
    const absolute = path.resolve(file);
    this.hints.delete(absolute);
    this.watcher.unwatch(absolute);
  }

  async close(): Promise<void> {
    clearInterval(this.poll);
    this.hints.clear();
    await this.watcher.close();
  }
}
