import { Worker } from 'node:worker_threads';
import type { RegexAnswer, RegexJob } from './regexWorker.js';
import type { Window, WindowMatch } from './searchWindow.js';

/**
 * A user's regex (or a case-insensitive text query that is not ASCII, as an escaped pattern) run in
 * a worker thread, one window at a time with a deadline: past it the thread is terminated and the
 * search says `regex_timeout`. The window's bytes go to the thread and come back (transferred, not
 * copied).
 */
export class RegexMatcher {
  readonly contextBefore: number;
  readonly contextAfter: number;
  private worker: Worker | null = null;

  constructor(private readonly source: string, private readonly flags: string, private readonly deadlineMs: number, context: number) {
    this.contextBefore = context;
    this.contextAfter = context;
  }

  scan(window: Window, max: number): Promise<{ matches: WindowMatch[]; scannedTo: number; bytes: Buffer } | 'timeout'> {
    this.worker ??= new Worker(new URL('./regexWorker.js', import.meta.url), { workerData: { source: this.source, flags: this.flags } });
    const thread = this.worker;
    const { bytes } = window;
    const { byteOffset, length } = bytes; // read now: a transferred buffer's views read 0
    return new Promise((resolve, reject) => {
      // One window at a time: both listeners go when either fires (no listener is left per window).
      const done = () => {
        clearTimeout(timer);
        thread.off('message', onMessage);
        thread.off('error', onError);
      };
      const onMessage = ({ buffer, matches }: RegexAnswer) => {
        done();
        resolve({ matches, scannedTo: window.to, bytes: Buffer.from(buffer, byteOffset, length) });
      };
      const onError = (error: Error) => {
        done();
        this.worker = null;
        reject(error);
      };
      const timer = setTimeout(() => {
        done();
        this.worker = null;
        thread.terminate().catch(() => {}); // it is dropped either way
        resolve('timeout');
      }, this.deadlineMs);
      thread.on('message', onMessage);
      thread.on('error', onError);
      // The window's own ArrayBuffer, from its start: the bytes are moved to the thread, not copied.
      const buffer = bytes.buffer as ArrayBuffer;
      const job: RegexJob = { buffer, offset: byteOffset, length, from: window.from, to: window.to, lineStart: window.lineStart, max };
      thread.postMessage(job, [buffer]);
    });
  }

  close(): void {
    this.worker?.terminate().catch(() => {}); // it is dropped either way
  }
}
