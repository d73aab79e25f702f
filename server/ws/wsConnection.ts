import WebSocket from 'ws';
import type { ErrorBody } from '../errors.js';
import type { Frame, LogSink, ServerMessageType } from '../hub/messages.js';
import type { SentCounter } from '../metrics/hubMetrics.js';

/** One client's socket as a log sink: sends frames, and tells when its buffer is too full. */
export class WsConnection implements LogSink {
  alive = true;
  /** since when its buffer has stayed over the high-water mark (null: it is keeping up) */
  congestedSince: number | null = null;
  readonly runs = new Set<number>();
  readonly projects = new Set<number>();
  private waiters: (() => void)[] = [];

  constructor(readonly socket: WebSocket, private readonly highWaterBytes: number, private readonly countSent?: SentCounter) {
    socket.once('close', () => this.wake());
  }

  get closed(): boolean {
    return this.socket.readyState !== WebSocket.OPEN;
  }

  /** Only live subscriptions count against the limit: a finished one is freed with its `complete` (or `log_reset`, `run_removed`). */
  subscriptionEnded(runId: number): void {
    this.runs.delete(runId);
  }

  get subscriptionCount(): number {
    return this.runs.size + this.projects.size;
  }

  send(_type: ServerMessageType, frame: Frame): void {
    if (this.closed) return;
    this.countSent?.('ws', typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length);
    // A text frame even when given bytes. The callback runs once the frame is handed to the
    // socket: the moment to see if it drained.
    this.socket.send(frame, { binary: false }, () => {
      if (this.waiters.length > 0 && !this.congested()) this.wake();
    });
  }

  sendError(error: ErrorBody & { run_id?: number; project_id?: number }): void {
    this.send('error', JSON.stringify({ type: 'error', ...error }));
  }

  congested(): boolean {
    const congested = this.socket.bufferedAmount > this.highWaterBytes;
    if (!congested) this.congestedSince = null;
    else this.congestedSince ??= Date.now();
    return congested;
  }

  drained(): Promise<void> {
    if (!this.congested() || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
