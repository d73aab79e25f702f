import type http from 'node:http';
import type { Frame, LogSink, ServerMessageType } from '../hub/messages.js';
import type { SentCounter } from '../metrics/hubMetrics.js';

/**
 * A Server-Sent Events response as a log sink: the same messages as the WebSocket, each an event
 * whose `id` is the `next` offset, so a reconnecting EventSource resumes through Last-Event-ID.
 */
export class SseSink implements LogSink {
  private waiters: (() => void)[] = [];
  private ended = false;

  constructor(private readonly response: http.ServerResponse, private readonly highWaterBytes: number, private readonly countSent?: SentCounter) {
    response.on('drain', () => this.wake());
    response.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  get closed(): boolean {
    return this.ended || this.response.destroyed;
  }

  send(type: ServerMessageType, frame: Frame, next?: number): void {
    if (this.closed) return;
    const id = next === undefined ? '' : `id: ${next}\n`;
    this.countSent?.('sse', typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length);
    // A frame is one line of JSON (newlines inside strings are escaped), so one `data:` field.
    this.response.cork();
    this.response.write(`${id}event: ${type}\ndata: `);
    this.response.write(frame);
    this.response.write('\n\n');
    this.response.uncork();
  }

  /** One stream is one subscription: it ends with `complete`, `log_reset` or `run_removed`. */
  subscriptionEnded(): void {
    this.end();
  }

  /** Tells the browser how long to wait before it reconnects (EventSource's `retry` field). */
  retry(ms: number): void {
    if (!this.closed) this.response.write(`retry: ${Math.max(0, Math.round(ms))}\n\n`);
  }

  comment(text: string): void {
    if (!this.closed) this.response.write(`: ${text}\n\n`);
  }

  congested(): boolean {
    return this.response.writableLength > this.highWaterBytes;
  }

  drained(): Promise<void> {
    if (!this.congested() || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.response.end();
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
