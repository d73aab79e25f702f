import WebSocket from 'ws';

export interface LogMessage {
  type: string;
  run_id?: number;
  offset?: number;
  next?: number;
  lines?: string[];
  continued?: number[];
  [key: string]: unknown;
}

/** A real WebSocket client that records every message and can wait for one. */
export class TestClient {
  readonly messages: LogMessage[] = [];
  private listeners: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)));
      for (const listener of this.listeners) listener();
    });
  }

  static async connect(httpUrl: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(`${httpUrl.replace(/^http/, 'ws')}/ws`, options);
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Waits for a message matching `predicate` (among all received so far), failing after `timeoutMs`. */
  waitFor(predicate: (message: LogMessage) => boolean, what: string, timeoutMs = 10_000): Promise<LogMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(predicate);
        if (!found) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; last messages: ${JSON.stringify(this.messages.slice(-3)).slice(0, 600)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((listener) => listener !== onMessage);
      };
      const onMessage = () => void check();
      if (!check()) this.listeners.push(onMessage);
    });
  }

  complete(runId: number, timeoutMs?: number): Promise<LogMessage> {
    return this.waitFor((m) => m.type === 'complete' && m.run_id === runId, `complete of run ${runId}`, timeoutMs);
  }

  /** The lines received for a run, checked to be contiguous: each batch starts where the last ended. */
  linesOf(runId: number, from?: number): { lines: string[]; next: number } {
    const lines: string[] = [];
    let next = from;
    for (const message of this.messages) {
      if (message.type !== 'lines' || message.run_id !== runId) continue;
      if (next !== undefined && message.offset !== next) throw new Error(`gap or overlap: batch at ${message.offset}, expected ${next}`);
      lines.push(...message.lines!);
      next = message.next;
    }
    return { lines, next: next ?? 0 };
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}
