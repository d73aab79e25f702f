import client from 'prom-client';
import type { RunStatus } from '../wire.js';

/** What a sink sent: counted per transport. */
export type Transport = 'ws' | 'sse';
export type SentCounter = (transport: Transport, bytes: number) => void;

/** Read at each scrape, from the parts that hold them (wired in the composition root). */
export interface MetricSources {
  runsByStatus: () => Promise<Record<RunStatus, number>>;
  sockets: () => { connections: number };
  subscriptions: () => { run: number; project: number; paused: number };
}

/**
 * The hub's Prometheus metrics (`GET /metrics`), on a registry of its own: runs by status, queue
 * length, active runs, WebSocket connections and subscriptions, frames and bytes sent, paused
 * subscribers, and prom-client's process and event-loop metrics.
 */
export class HubMetrics {
  readonly registry = new client.Registry();
  /** Plain sums on the send path (once per message per subscriber); the counters take them at each scrape. */
  private readonly sent: Record<Transport, { frames: number; bytes: number }> = { ws: { frames: 0, bytes: 0 }, sse: { frames: 0, bytes: 0 } };

  constructor(sources: MetricSources) {
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
    // One store query per scrape, shared by the three gauges.
    let counting: Promise<Record<RunStatus, number>> | null = null;
    const counts = () => (counting ??= sources.runsByStatus().finally(() => setImmediate(() => (counting = null))));
    new client.Gauge({
      name: 'hub_runs', help: 'Run records by status', labelNames: ['status'], registers: [this.registry],
      async collect() {
        for (const [status, count] of Object.entries(await counts())) this.set({ status }, count);
      },
    });
    new client.Gauge({
      name: 'hub_queue_length', help: 'Runs waiting to start (pending)', registers: [this.registry],
      async collect() { this.set((await counts()).pending); },
    });
    new client.Gauge({
      name: 'hub_active_runs', help: 'Runs running now', registers: [this.registry],
      async collect() { this.set((await counts()).running); },
    });
    const sent = this.sent;
    // Counters that catch up with the sums when scraped (inc by what was sent since the last scrape).
    for (const [name, help, field] of [['hub_frames_sent_total', 'Messages sent to clients', 'frames'], ['hub_bytes_sent_total', 'Bytes of messages sent to clients', 'bytes']] as const) {
      const reported: Record<Transport, number> = { ws: 0, sse: 0 };
      new client.Counter({
        name, help, labelNames: ['transport'], registers: [this.registry],
        collect() {
          for (const transport of ['ws', 'sse'] as const) {
            this.inc({ transport }, sent[transport][field] - reported[transport]);
            reported[transport] = sent[transport][field];
          }
        },
      });
    }
    new client.Gauge({
      name: 'hub_websocket_connections', help: 'Open WebSocket connections', registers: [this.registry],
      collect() { this.set(sources.sockets().connections); },
    });
    new client.Gauge({
      name: 'hub_subscriptions', help: 'Live subscriptions (WebSocket and SSE) by kind', labelNames: ['kind'], registers: [this.registry],
      collect() {
        const { run, project } = sources.subscriptions();
        this.set({ kind: 'run' }, run);
        this.set({ kind: 'project' }, project);
      },
    });
    new client.Gauge({
      name: 'hub_paused_subscribers', help: 'Run subscribers whose socket is over its high-water mark (they catch up from the log)', registers: [this.registry],
      collect() { this.set(sources.subscriptions().paused); },
    });
  }

  /** Given to every sink: one call per message sent. */
  readonly countSent: SentCounter = (transport, bytes) => {
    this.sent[transport].frames++;
    this.sent[transport].bytes += bytes;
  };

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
