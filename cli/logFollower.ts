import type { Writable } from 'node:stream';
import WebSocket from 'ws';
import type { CompleteMessage, Run, ServerMessage } from '../server/wire.js';
import { CliError, type HubClient } from './hubClient.js';
import { checkLogRead, fetchStampedPage } from './stampedPages.js';

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;
/** Errors that pass (the hub's database or Redis away, a finished log whole in no store just now): subscribe again, with backoff. */
const RETRYABLE = new Set(['database_busy', 'log_store_unavailable', 'log_unavailable']);

export interface FollowHooks {
  /** write each line after its time (the hub's text pages) instead of the log's bytes */
  timestamps?: boolean;
  /** the run's record changed (status, step, progress) */
  onRun?: (run: Run) => void;
  /** the connection dropped or came back: for a status line */
  onConnection?: (state: 'lost' | 'resumed', detail: string) => void;
}

/**
 * Writes a run's log from byte `from` to `out`, byte for byte, until the run is complete, across
 * dropped connections and hub restarts.
 *
 * The WebSocket is only the doorbell: its `lines` and `complete` messages say how far the log has
 * grown, and the bytes themselves are read with `Range` from `…/logs/raw`. `lines` carry text
 * (a `\r\n` loses its `\r`, bytes that are not UTF-8 become U+FFFD), the raw file has the bytes as
 * written, so `run-hub logs RUN > f` equals the file. With `timestamps`, the lines are read as the
 * hub's text pages instead, each after its time.
 */
export class LogFollower {
  /** the next byte to write */
  position: number;
  /** how far the hub said the log reaches */
  private known: number;
  private complete: CompleteMessage | null = null;
  private socket: WebSocket | null = null;
  private reading = false;
  private stopped = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  /** a retryable error was answered: the backoff goes on until the log moves again */
  private refused = false;
  private settle!: { resolve: (complete: CompleteMessage) => void; reject: (error: Error) => void };
  readonly done: Promise<CompleteMessage>;

  constructor(private readonly client: HubClient, private readonly run: Pick<Run, 'id' | 'project_id'>, from: number, private readonly out: Writable, private readonly hooks: FollowHooks = {}) {
    this.position = from;
    this.known = from;
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined).finally(() => this.stop());
    this.connect();
  }

  /** Stops following (detach); the promise stays pending. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.socket?.terminate();
  }

  private connect(): void {
    if (this.stopped) return;
    const url = `${this.client.baseUrl.replace(/^http/, 'ws')}/ws`;
    const protocols = this.client.token ? ['hub', `hub-token.${this.client.token}`] : undefined;
    const socket = new WebSocket(url, protocols);
    this.socket = socket;
    let opened = false;
    socket.on('open', () => {
      opened = true;
      if (this.retryMs > RETRY_FIRST_MS && !this.refused) this.hooks.onConnection?.('resumed', `at byte ${this.position}`);
      if (!this.refused) this.retryMs = RETRY_FIRST_MS;
      // From the furthest `next` heard (a line boundary the hub gave; bytes before it are read by Range).
      socket.send(JSON.stringify({ type: 'subscribe', run_id: this.run.id, offset: this.known }));
      if (this.hooks.onRun) socket.send(JSON.stringify({ type: 'subscribe', project_id: this.run.project_id }));
    });
    socket.on('message', (data) => this.socketOnMessage(JSON.parse(String(data)) as ServerMessage));
    socket.on('unexpected-response', (_request, response) => {
      // 401/403 will not change by retrying: say so and stop.
      if (response.statusCode === 401 || response.statusCode === 403) this.fail(new CliError(`the hub refused the WebSocket (HTTP ${response.statusCode}): check HUB_TOKEN`, 'unauthorized', response.statusCode));
      socket.terminate();
    });
    socket.on('error', () => undefined); // followed by close
    socket.on('close', () => {
      if (this.stopped || this.socket !== socket) return;
      if (opened && !this.refused) this.hooks.onConnection?.('lost', 'reconnecting');
      // Jittered: the followers of a hub that went away (a drain, a restart) do not all come back at once.
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs * (0.5 + Math.random()));
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    });
  }

  private socketOnMessage(message: ServerMessage): void {
    if (message.type === 'run') {
      if (message.run.id === this.run.id) this.hooks.onRun?.(message.run);
      return;
    }
    if (message.type === 'error') {
      if (message.run_id !== this.run.id && message.run_id !== undefined) return;
      if (!RETRYABLE.has(message.code)) return this.fail(new CliError(`${message.message} (${message.code})`, message.code));
      // Asked again after a backoff (the connection's own, which grows until the log moves).
      this.refused = true;
      this.hooks.onConnection?.('lost', `${message.code}: asking again`);
      this.socket?.terminate();
      return;
    }
    if (!('run_id' in message) || message.run_id !== this.run.id) return;
    if (message.type === 'run_removed') {
      this.fail(new CliError(`run ${this.run.id} was removed (${message.reason}) before its log was all read`, 'run_removed'));
      return;
    }
    if (message.type === 'lines' || message.type === 'complete') this.refused = false;
    if (message.type === 'lines') this.known = Math.max(this.known, message.next);
    if (message.type === 'complete') {
      this.complete = message;
      this.known = Math.max(this.known, message.next);
    }
    this.read().catch((error: unknown) => this.fail(error as Error));
  }

  /** Reads [position, known) with Range until caught up; one reader at a time. */
  private async read(): Promise<void> {
    if (this.reading || this.stopped) return;
    this.reading = true;
    try {
      while (!this.stopped && this.position < this.known) {
        try {
          if (this.hooks.timestamps) await this.readStamped(this.position);
          else await this.readRange(this.position, this.known);
        } catch (error) {
          if (error instanceof CliError && error.code !== 'unreachable') throw error;
          await new Promise((resolve) => setTimeout(resolve, this.retryMs)); // the hub restarts: again shortly
        }
      }
      if (this.complete && this.position >= this.complete.next) this.settle.resolve(this.complete);
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.reading = false;
    }
  }

  private async readRange(start: number, end: number): Promise<void> {
    const path = `/api/projects/${this.run.project_id}/runs/${this.run.id}/logs/raw`;
    const response = await this.client.fetch(path, { headers: { range: `bytes=${start}-${end - 1}` } });
    checkLogRead(response, this.run, start, 416);
    // 200 is the whole file (a server that ignored the range): skip to where this copy is.
    let skip = response.status === 206 ? 0 : start;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (skip > 0) {
        const dropped = Math.min(skip, bytes.length);
        skip -= dropped;
        bytes = bytes.subarray(dropped);
      }
      if (bytes.length === 0) continue;
      this.position += bytes.length;
      if (!this.out.write(bytes)) await new Promise((resolve) => this.out.once('drain', resolve));
    }
  }

  /** One page of lines with their times from `start`; a page that makes no progress waits and asks again. */
  private async readStamped(start: number): Promise<void> {
    const page = await fetchStampedPage(this.client, this.run, start);
    if (page.next <= start) throw new CliError('no complete line yet', 'unreachable');
    this.position = page.next;
    if (!this.out.write(page.text)) await new Promise((resolve) => this.out.once('drain', resolve));
  }

  private fail(error: Error): void {
    this.stop();
    this.settle.reject(error);
  }
}
