import { createHash, type Hash } from 'node:crypto';
import WebSocket from 'ws';

const REPLACEMENT = Buffer.from('\uFFFD');
/** A copy longer than this is kept as a running sha256 (the soak holds many copies until the end). */
const KEEP_BYTES = 8 * 1024 * 1024;
/** when this process started: no line of the soak was written before it */
const CREATED = Date.now();

/** The log bytes a `lines` message stands for: each line and its newline, pieces of a long line joined. */
export function bytesOfLines(message: { lines: string[]; continued?: number[] }): Buffer {
  const continued = new Set(message.continued ?? []);
  return Buffer.from(message.lines.map((line, index) => (continued.has(index) ? line : `${line}\n`)).join(''));
}

/**
 * A client that follows one run to its `complete` over WebSocket or SSE, across dropped
 * connections and server restarts, resuming each time from the last `next` it saw. It keeps the
 * bytes it was sent, to be compared with the log file.
 */
export class Follower {
  /** the copy, while it is at most KEEP_BYTES */
  readonly chunks: Buffer[] = [];
  copyLength = 0;
  /** past KEEP_BYTES: the sha256 of the copy but its last byte, and that byte */
  private hash: Hash | null = null;
  private held: Buffer | null = null;
  /** where its copy starts (the first `subscribed` offset) */
  start: number | null = null;
  next: number | null = null;
  final: number | null = null;
  resumes = 0;
  errors: string[] = [];
  /** told its run was removed: the `run_removed` reason */
  removed: string | null = null;
  /** a (re)connect found the run gone: WebSocket `not_found`, SSE 404 */
  gone = false;
  /** when the soak last dropped its connection (a restart, a network fault) */
  droppedAt = 0;
  /** given up on (reported as it happened): no longer waited for */
  abandoned = false;
  /** until then it reads nothing (a slow reader: the server's buffers fill) */
  slowUntil = 0;
  private close: (() => void) | null = null;

  /** `timestamps`: it asks for the lines' times, and checks it gets one per line */
  constructor(readonly projectId: number, readonly runId: number, readonly transport: 'ws' | 'sse', private readonly tail: number | null, readonly timestamps = false) {}

  /** It knows how its run ended: `complete`, or removed. */
  get done(): boolean {
    return this.final !== null || this.removed !== null || this.gone;
  }

  get connected(): boolean {
    return this.close !== null;
  }

  /** (Re)connects to the hub at `url`, from the last `next` (or from the start it was given). */
  connect(url: string): void {
    if (this.done || this.connected) return;
    if (this.next !== null) this.resumes++;
    const from = this.next !== null ? { offset: this.next } : this.tail !== null ? { tail: this.tail } : { offset: 0 };
    if (this.transport === 'ws') this.connectWs(url, from);
    else this.connectSse(url, from);
  }

  /** Drops the connection as a network fault would. */
  drop(): void {
    if (this.close) this.droppedAt = Date.now();
    const close = this.close;
    this.close = null;
    close?.();
  }

  private onMessage(message: Record<string, any>): void {
    if (message.run_id !== this.runId) return;
    if (message.type === 'subscribed') {
      this.start ??= message.offset;
      if (this.next !== null && message.offset !== this.next) this.errors.push(`resumed at ${message.offset}, asked ${this.next}`);
      this.next = message.offset;
    } else if (message.type === 'lines') {
      if (message.offset !== this.next) this.errors.push(`lines at ${message.offset}, expected ${this.next}`);
      const bytes = bytesOfLines(message as { lines: string[] });
      // Only the last line of a finished log may stand for one byte less (no newline).
      // (U+FFFD stands for bytes that were not UTF-8, and is longer: not checked here.)
      if (!bytes.includes(REPLACEMENT) && bytes.length !== message.next - message.offset && bytes.length !== message.next - message.offset + 1) {
        this.errors.push(`lines ${message.offset}-${message.next} carry ${bytes.length} bytes: ${JSON.stringify(message).slice(0, 300)}`);
      }
      if (this.timestamps) this.checkTimes(message);
      else if ('times' in message) this.errors.push(`times sent unasked at ${message.offset}`);
      this.keep(bytes);
      this.next = message.next;
    } else if (message.type === 'complete') {
      if (message.next !== this.next) this.errors.push(`complete at ${message.next}, last next ${this.next}`);
      this.final = message.next;
      this.drop();
    } else if (message.type === 'run_removed') {
      this.removed = String(message.reason);
      this.drop();
    } else if (message.type === 'error' && message.code === 'not_found') {
      this.gone = true;
      this.drop();
    } else if (message.type === 'error') {
      this.errors.push(`${message.code}: ${message.message}`);
      this.drop();
    }
  }

  private keep(bytes: Buffer): void {
    this.copyLength += bytes.length;
    if (!this.hash && this.copyLength <= KEEP_BYTES) {
      this.chunks.push(bytes);
      return;
    }
    if (!this.hash) {
      this.hash = createHash('sha256');
      bytes = Buffer.concat([...this.chunks.splice(0), bytes]);
    }
    if (bytes.length === 0) return;
    if (this.held) this.hash.update(this.held);
    this.hash.update(bytes.subarray(0, -1));
    this.held = bytes.subarray(-1);
  }

  /** A long copy's sha256, whole and without its last byte; null while the copy is kept whole. */
  digests(): { whole: string; withoutLast: string } | null {
    if (!this.hash) return null;
    return { whole: this.hash.copy().update(this.held ?? Buffer.alloc(0)).digest('hex'), withoutLast: this.hash.copy().digest('hex') };
  }

  /** One time per line: a plausible Unix ms time, or null (unknown). */
  private checkTimes(message: Record<string, any>): void {
    const times: unknown = message.times;
    const plausible = (time: unknown) => time === null || (typeof time === 'number' && time > CREATED - 60_000 && time < Date.now() + 60_000);
    if (!Array.isArray(times) || times.length !== message.lines.length || !times.every(plausible)) {
      this.errors.push(`lines at ${message.offset} have times ${JSON.stringify(times).slice(0, 200)} for ${message.lines.length} lines`);
    }
  }

  private connectWs(url: string, from: object): void {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
    this.close = () => socket.terminate();
    socket.on('open', () => this.pauseWhileSlow(socket));
    socket.on('open', () => socket.send(JSON.stringify({ type: 'subscribe', run_id: this.runId, ...from, ...(this.timestamps && { timestamps: true }) })));
    socket.on('message', (data) => this.onMessage(JSON.parse(String(data))));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.close) this.close = null;
    });
  }

  private pauseWhileSlow(socket: WebSocket): void {
    if (Date.now() >= this.slowUntil) return;
    socket.pause();
    setTimeout(() => socket.resume(), this.slowUntil - Date.now());
  }

  private connectSse(url: string, from: { offset?: number; tail?: number }): void {
    const controller = new AbortController();
    this.close = () => controller.abort();
    const query = (from.offset !== undefined ? `offset=${from.offset}` : `tail=${from.tail}`) + (this.timestamps ? '&timestamps=1' : '');
    void (async () => {
      const response = await fetch(`${url}/api/projects/${this.projectId}/runs/${this.runId}/logs?${query}`, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
      if (response.status === 404) {
        this.gone = true;
        return;
      }
      if (response.status !== 200) {
        this.errors.push(`SSE answered ${response.status}`);
        return;
      }
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        if (Date.now() < this.slowUntil) await new Promise((resolve) => setTimeout(resolve, this.slowUntil - Date.now()));
        buffered += decoder.decode(chunk, { stream: true });
        for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
          const data = buffered.slice(0, end).split('\n').find((line) => line.startsWith('data: '));
          buffered = buffered.slice(end + 2);
          if (data) this.onMessage(JSON.parse(data.slice(6)));
        }
      }
    })().catch(() => {}).finally(() => {
      if (this.close) this.close = null;
    });
  }
}
