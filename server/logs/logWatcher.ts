import path from 'node:path';
import { FSWatcher } from 'chokidar';

type Hint = () => void;

const SAFETY_POLL_MS = 250;

/**
 * Watches the followed logs with chokidar. Its events are hints, never data: each one makes the
 * run's reader read from its offset to the end of the file. We listen to `raw` (every fs.watch
 * event, unthrottled) because chokidar throttles `change` to one per 50 ms with no trailing event,
 * which delays lines and can leave the end of a burst unsignalled. One watcher per file, so its
 * `ready` event tells when watching has begun: one more read then covers anything written while
 * chokidar was setting up. A slow poll covers missed events and files that do not exist yet.
 */
export class LogWatcher {
  private readonly watchers = new Map<string, { watcher: FSWatcher; hint: Hint }>();
  private readonly poll: NodeJS.Timeout;

  constructor() {
    this.poll = setInterval(() => {
      for (const { hint } of this.watchers.values()) hint();
    }, SAFETY_POLL_MS);
    this.poll.unref();
  }

  watch(file: string, hint: Hint): void {
    const absolute = path.resolve(file);
    if (this.watchers.has(absolute)) return;
    const watcher = new FSWatcher({ persistent: false, ignoreInitial: true, atomic: false });
    watcher.on('raw', hint);
    watcher.on('add', hint);
    watcher.on('change', hint);
    watcher.once('ready', hint);
    watcher.on('error', () => {}); // a vanished folder must not crash the hub; the poll goes on
    watcher.add(absolute);
    this.watchers.set(absolute, { watcher, hint });
  }

  unwatch(file: string): void {
    const absolute = path.resolve(file);
    const entry = this.watchers.get(absolute);
    if (!entry) return;
    this.watchers.delete(absolute);
    entry.watcher.close().catch(() => {}); // a watcher that fails to close watches nothing we read
  }

  async close(): Promise<void> {
    clearInterval(this.poll);
    const closing = [...this.watchers.values()].map(({ watcher }) => watcher.close());
    this.watchers.clear();
    await Promise.all(closing);
  }
}
