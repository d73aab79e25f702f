import { HubError } from '../errors.js';
import type { SseSink } from './sseSink.js';

/** How often a drain closes the clients whose turn has come. */
const DRAIN_TICK_MS = 20;

/** Refused while draining: the client should go to another hub (a load balancer sends it there). */
export const drainingError = () => new HubError(503, 'draining', 'This hub is shutting down: connect again (to another hub)', { headers: { 'Retry-After': '1' } });

/**
 * Closes `items` with `close`, evenly over `durationMs` rather than all at once, so the clients of a
 * hub going away reconnect to the other hubs a few at a time (no reconnect storm). Items added while
 * it runs are not waited for.
 */
export async function closeSpread<T>(items: Iterable<T>, durationMs: number, close: (item: T) => void): Promise<void> {
  const queue = [...items];
  if (queue.length === 0) return;
  const started = Date.now();
  let closed = 0;
  while (closed < queue.length) {
    // Due by now: the share of the duration that has passed, the last one at the end.
    const due = durationMs <= 0 ? queue.length : Math.min(queue.length, Math.floor(((Date.now() - started) / durationMs) * queue.length) + 1);
    for (; closed < due; closed++) close(queue[closed]);
    if (closed < queue.length) await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
  }
}

/**
 * A hub's drain (SIGTERM): from its start the hub says it is draining (for readiness, so a load
 * balancer stops sending clients) and refuses new log streams; then its long-lived clients are
 * closed a few at a time. Here: the state, and the SSE streams (the WebSocket server drains its own).
 */
export class Drain {
  private state: 'serving' | 'draining' = 'serving';
  private readonly streams = new Set<SseSink>();

  get draining(): boolean {
    return this.state === 'draining';
  }

  /** From now on: not ready, and new streams are refused. */
  begin(): void {
    this.state = 'draining';
  }

  /** An open SSE stream, to be ended by the drain; returns how to forget it (it closed). */
  track(sink: SseSink): () => void {
    this.streams.add(sink);
    return () => this.streams.delete(sink);
  }

  /**
   * Ends the SSE streams over `durationMs`; each is told to reconnect after a random part of a
   * second (`retry:`), and its EventSource resumes from its Last-Event-ID on another hub.
   */
  closeStreams(durationMs: number): Promise<void> {
    return closeSpread(this.streams, durationMs, (sink) => {
      sink.retry(500 + Math.floor(Math.random() * 1000));
      sink.end();
    });
  }
}
