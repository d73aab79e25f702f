import { Worker } from 'node:worker_threads';
import type { RunnerProcess } from './runnerProcess.js';
import type { FromThread, ToThread } from './spawnThreadWorker.js';

/** How long a closing thread may take to hand over the runs it was given. */
const CLOSE_GRACE_MS = 2000;

interface Entry {
  process: ThreadRunner;
  resolve?: (process: RunnerProcess) => void;
  reject?: (error: Error) => void;
}

class ThreadRunner implements RunnerProcess {
  pid = 0;
  exited: RunnerProcess['exited'] = null;
  followed = true;
  private listeners: (() => void)[] = [];

  constructor(readonly token: string, private readonly post: (input: string | null) => void) {}

  send(input: string | null): void {
    this.post(input);
  }

  onExit(listener: () => void): void {
    if (this.exited) queueMicrotask(listener);
    else this.listeners.push(listener);
  }

  markExited(code: number | null, signal: string | null): void {
    this.exited = { code, signal };
    for (const listener of this.listeners.splice(0)) listener();
  }
}

/**
 * Starts runner processes from a worker thread, so the fork never blocks the event loop that
 * serves logs (measured: 50 runners at once stalled it 1.6 s; from the thread, under 60 ms). The
 * runners are the same detached processes as before: they outlive the server and are re-attached
 * by pid and token after a restart.
 */
export class SpawnThread {
  private worker: Worker | null = null;
  private readonly entries = new Map<number, Entry>();
  private nextId = 1;
  /** spawns asked for and not yet answered: the thread keeps the process alive only for these */
  private pending = 0;
  private closed = false;

  spawn(command: string[], env: Record<string, string>, token: string): Promise<RunnerProcess> {
    if (this.closed) return Promise.reject(new Error('the runner thread is closed'));
    const worker = this.thread();
    const id = this.nextId++;
    const process = new ThreadRunner(token, (input) => this.worker?.postMessage({ type: 'input', id, input } satisfies ToThread));
    return new Promise((resolve, reject) => {
      this.entries.set(id, { process, resolve, reject });
      this.waitingFor(+1);
      worker.postMessage({ type: 'spawn', id, command, env } satisfies ToThread);
    });
  }

  /**
   * Safe to call twice. Runners keep running; their exits are no longer reported. The thread first
   * hands over the runs it was given (a launch just before a shutdown still reaches its runner).
   */
  close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return Promise.resolve();
    return new Promise((resolve) => {
      worker.once('exit', () => resolve());
      worker.ref(); // kept alive until it has handed everything over
      worker.postMessage({ type: 'close' } satisfies ToThread);
      // Its 'exit' resolves close either way.
      setTimeout(() => {
        worker.terminate().catch(() => {});
      }, CLOSE_GRACE_MS).unref();
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./spawnThreadWorker.js', import.meta.url));
    worker.unref();
    worker.on('message', (message: FromThread) => this.threadOnMessage(message));
    // A thread that died: pending spawns fail; the next spawn starts a new thread.
    worker.on('error', (error) => this.threadOnGone(worker, error));
    worker.on('exit', () => this.threadOnGone(worker, new Error('the runner thread exited')));
    this.worker = worker;
    return worker;
  }

  private waitingFor(change: number): void {
    this.pending += change;
    if (this.pending > 0) this.worker?.ref();
    else this.worker?.unref();
  }

  private threadOnMessage(message: FromThread): void {
    const entry = this.entries.get(message.id);
    if (!entry) return;
    if (message.type === 'spawned') {
      entry.process.pid = message.pid;
      this.waitingFor(-1);
      entry.resolve?.(entry.process);
      entry.resolve = entry.reject = undefined;
    } else if (message.type === 'failed') {
      this.entries.delete(message.id);
      this.waitingFor(-1);
      entry.reject?.(new Error(message.message));
    } else {
      this.entries.delete(message.id);
      entry.process.markExited(message.code, message.signal);
    }
  }

  private threadOnGone(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    for (const entry of this.entries.values()) {
      entry.reject?.(error);
      entry.process.followed = false;
    }
    this.entries.clear();
    this.pending = 0;
  }
}
