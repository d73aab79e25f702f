import type net from 'node:net';
import pg from 'pg';
import { backoffMs, withTimeout } from '../../retry.js';

export interface ListenerEvents {
  /** a notification on the channel */
  notice(payload: string): void;
  /** LISTEN is in place again (the first time too): notifications sent while it was not are lost, read what changed */
  connected(): void;
}

export interface ListenerOptions {
  /** a connection attempt, and each ping, gives up after this long */
  timeoutMs: number;
  /** the connection is pinged this often, so one that went silent (a partition, a frozen server) is replaced */
  pingMs: number;
  /** reconnects wait from this long, doubling up to `retryMaxMs`, with jitter */
  retryFirstMs?: number;
  retryMaxMs?: number;
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;
/** A dropped client's socket is destroyed if it has not ended on its own by then. */
const DROP_GRACE_MS = 1000;

/**
 * A LISTEN connection that comes back: when it errors, ends or stops answering pings, it is dropped
 * and opened again with backoff (jittered, capped), and `connected` tells the owner to read what it
 * missed meanwhile. PostgreSQL does not queue notifications for a listener that is away.
 */
export class PgListener {
  private client: pg.Client | null = null;
  private listening = false;
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private readonly pinger: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly config: pg.ClientConfig, private readonly channel: string, private readonly events: ListenerEvents, private readonly options: ListenerOptions) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`Expected a channel name of lower-case letters, digits and _, got ${JSON.stringify(channel)}`);
    this.pinger = setInterval(() => {
      if (this.listening) this.ping().catch(() => {}); // a failed ping drops the connection itself
    }, options.pingMs);
    this.pinger.unref();
    this.connect();
  }

  /** LISTEN is in place on a connection that answered its last ping. */
  get isListening(): boolean {
    return this.listening;
  }

  /** Readiness: resolves if the connection listens and answers now; a failure drops it (and reconnects). */
  async ping(): Promise<void> {
    const client = this.client;
    if (!client || !this.listening) throw new Error(`not listening on ${this.channel} (reconnecting)`);
    try {
      await withTimeout(client.query('SELECT 1'), this.options.timeoutMs, `the LISTEN connection (${this.channel})`);
    } catch (error) {
      this.lost(client);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pinger);
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    this.listening = false;
    if (client) await withTimeout(client.end(), DROP_GRACE_MS, 'closing the LISTEN connection').catch(() => destroy(client));
  }

  private connect(): void {
    this.retry = null;
    if (this.closed) return;
    const client = new pg.Client({ ...this.config, connectionTimeoutMillis: this.options.timeoutMs, query_timeout: this.options.timeoutMs, keepAlive: true });
    this.client = client;
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (this.client === client && message.channel === this.channel) this.events.notice(message.payload ?? '');
    });
    client.connect()
      .then(() => client.query(`LISTEN ${this.channel}`))
      .then(() => {
        if (this.client !== client) return;
        this.listening = true;
        this.failures = 0;
        this.events.connected();
      }, () => this.lost(client));
  }

  /** The connection is gone or unusable: dropped, and another one opened after a backoff. */
  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    drop(client);
    if (this.closed) return;
    this.retry = setTimeout(() => this.connect(), backoffMs(this.failures++, this.options.retryFirstMs ?? RETRY_FIRST_MS, this.options.retryMaxMs ?? RETRY_MAX_MS));
    this.retry.unref();
  }
}

/** Ends a client without waiting for it; one whose server does not answer is cut. */
function drop(client: pg.Client): void {
  client.end().catch(() => {});
  setTimeout(() => destroy(client), DROP_GRACE_MS).unref();
}

/** The client's socket (pg keeps it in `connection.stream`), destroyed. */
function destroy(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: net.Socket } }).connection?.stream?.destroy();
}
