import WebSocket from 'ws';
import { bytesOfLines } from '../follower.js';

/** A request with a deadline (a hub may be frozen or gone): the status and parsed body, or throws. */
export async function call(url: string, method: string, urlPath: string, body?: unknown, timeoutMs = 5000): Promise<{ status: number; body: any }> {
  const response = await fetch(url + urlPath, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

/** A run's whole log as bytes (`/logs/raw`), or throws. */
export async function rawLog(url: string, projectId: number, runId: number): Promise<Buffer> {
  const response = await fetch(`${url}/api/projects/${projectId}/runs/${runId}/logs/raw`, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`raw answered ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/**
 * Errors a subscription gets while PostgreSQL or Redis does not answer in time, or while a finished
 * log is whole in no store (the 503 codes of HTTP): the client asks again, from its offset.
 */
const RETRYABLE = new Set(['log_store_unavailable', 'database_busy', 'log_unavailable']);

/**
 * A WebSocket client following one run to its `complete` across dropped connections: each time on
 * a hub picked by `pickHub` (another one, as a load balancer would after a drop), resuming from its
 * last `next`. On `log_reset` it does what the docs say: drops its copy and subscribes again from 0.
 */
export class ClusterFollower {
  chunks: Buffer[] = [];
  next = 0;
  final: number | null = null;
  completes = 0;
  resumes = 0;
  /** when each `log_reset` came */
  resets: number[] = [];
  /** subscribes refused for a store that did not answer in time (503 codes over the socket): asked again */
  refusals = 0;
  errors: string[] = [];
  private socket: WebSocket | null = null;
  private stopped = false;
  private lastUrl = '';

  constructor(readonly projectId: number, readonly runId: number, private readonly pickHub: (not: string) => string | undefined) {}

  get done(): boolean {
    return this.final !== null;
  }

  connect(): void {
    if (this.stopped || this.done || this.socket) return;
    const url = this.pickHub(this.lastUrl);
    if (!url) return void this.retry();
    this.lastUrl = url;
    if (this.next > 0 || this.chunks.length > 0) this.resumes++;
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
    this.socket = socket;
    // A connection that opens on a frozen hub and says nothing is given up too.
    const quiet = setTimeout(() => socket.terminate(), 15_000);
    socket.on('open', () => socket.send(JSON.stringify({ type: 'subscribe', run_id: this.runId, offset: this.next })));
    socket.on('message', (data) => {
      quiet.refresh();
      this.onMessage(socket, JSON.parse(String(data)));
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(quiet);
      if (this.socket === socket) this.socket = null;
      this.retry();
    });
  }

  /** A dropped connection, as a network fault or a load balancer would drop it: the client comes back elsewhere. */
  drop(): void {
    this.socket?.terminate();
  }

  stop(): void {
    this.stopped = true;
    this.socket?.terminate();
  }

  copy(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private retry(): void {
    if (this.stopped || this.done) return;
    setTimeout(() => this.connect(), 100 + Math.random() * 400);
  }

  private onMessage(socket: WebSocket, message: Record<string, any>): void {
    if (message.run_id !== this.runId) return;
    if (message.type === 'subscribed') {
      if (message.offset !== this.next) this.errors.push(`subscribed at ${message.offset}, asked ${this.next}`);
    } else if (message.type === 'lines') {
      if (message.offset !== this.next) this.errors.push(`lines at ${message.offset}, expected ${this.next}`);
      this.chunks.push(bytesOfLines(message as { lines: string[]; continued?: number[] }));
      this.next = message.next;
    } else if (message.type === 'complete') {
      this.completes++;
      if (this.completes > 1) this.errors.push(`a second complete at ${message.next}`);
      if (message.next !== this.next) this.errors.push(`complete at ${message.next}, last next ${this.next}`);
      this.final = message.next;
      socket.close();
    } else if (message.type === 'error' && message.code === 'log_reset') {
      this.resets.push(Date.now());
      this.chunks = [];
      this.next = 0;
      socket.terminate();
    } else if (message.type === 'error' && RETRYABLE.has(message.code)) {
      this.refusals++;
      socket.terminate();
    } else if (message.type === 'error') {
      this.errors.push(`${message.code}: ${message.message}`);
      socket.terminate();
    }
  }
}

/** An HTTP client polling `logs?offset=` from 0 every 100 ms, each page from the last `next`, on any hub that answers, until a page says complete. */
export class OffsetPoller {
  chunks: Buffer[] = [];
  offset = 0;
  final: number | null = null;
  failures = 0;
  /** when a page came at 0 for a later offset asked */
  resets: number[] = [];
  errors: string[] = [];
  private stopped = false;

  constructor(readonly projectId: number, readonly runId: number, private readonly pickHub: (not: string) => string | undefined) {}

  get done(): boolean {
    return this.final !== null;
  }

  start(): void {
    this.loop().catch((error: unknown) => this.errors.push(`poller: ${(error as Error).message}`));
  }

  stop(): void {
    this.stopped = true;
  }

  copy(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private async loop(): Promise<void> {
    let url = '';
    while (!this.stopped && this.final === null) {
      url = this.pickHub(url) ?? '';
      try {
        const { status, body } = await call(url, 'GET', `/api/projects/${this.projectId}/runs/${this.runId}/logs?offset=${this.offset}`);
        if (status !== 200) throw new Error(String(status));
        if (body.offset === 0 && this.offset > 0) {
          // The log as it is now starts over (its stream began again after Redis lost it): so does the copy.
          this.resets.push(Date.now());
          this.chunks = [];
        } else if (body.offset !== this.offset) this.errors.push(`page at ${body.offset}, asked ${this.offset}`);
        this.chunks.push(bytesOfLines(body));
        this.offset = body.next;
        if (body.complete) this.final = body.next;
      } catch {
        this.failures++;
        url = ''; // another hub next time
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
