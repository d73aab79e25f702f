import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { signBody } from '../../server/webhooks/signature.js';

/** How a receiver answers: always 200; 500 at random; stalls past the hub's 10 s timeout (or never answers); goes away and comes back. */
export const RECEIVER_KINDS = ['ok', 'failing', 'stalling', 'vanishing'] as const;
export type ReceiverKind = (typeof RECEIVER_KINDS)[number];

/** One POST a receiver got: which webhook (its URL path), the delivery id and event, and whether it answered 2xx. */
export interface Received {
  path: string;
  delivery: string;
  event: string;
  runId: number;
  answered: number | null;
  signed: boolean;
}

/**
 * A webhook receiver on its own port. Each project's webhook of this kind posts to `/<projectId>`.
 * Failing and stalling are bounded per delivery (its first two tries at most), so that every
 * delivery can succeed within the retry schedule; the soak checks it does.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  private server: http.Server;
  port = 0;
  /** tries seen per delivery id */
  private readonly tries = new Map<string, number>();
  private readonly held = new Set<http.ServerResponse>();

  constructor(readonly kind: ReceiverKind, readonly secret: string, private readonly next: () => number) {
    this.server = this.createServer();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private createServer(): http.Server {
    return http.createServer((request, response) => this.receiverOnRequest(request, response));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Closes its port: the hub's tries meet ECONNREFUSED until `comeBack`. */
  async vanish(): Promise<void> {
    for (const response of this.held) response.destroy();
    this.held.clear();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = this.createServer();
  }

  async comeBack(): Promise<void> {
    await this.listen();
  }

  async close(): Promise<void> {
    await this.vanish();
  }

  private receiverOnRequest(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const delivery = String(request.headers['x-hub-delivery']);
      const tries = (this.tries.get(delivery) ?? 0) + 1;
      this.tries.set(delivery, tries);
      let runId = 0;
      try {
        runId = JSON.parse(body).run.id;
      } catch {
        // recorded with run 0: the check reports it
      }
      const record: Received = { path: request.url ?? '', delivery, event: String(request.headers['x-hub-event']), runId, answered: null, signed: request.headers['x-hub-signature-256'] === signBody(this.secret, body) };
      this.received.push(record);
      // A late answer counts when the hub was still there to take it: a loaded hub's 10 s timeout can
      // fire after the 11 s answer (it then records the delivery as delivered); one that gave up has
      // closed the connection (destroyed), and tries again.
      const answer = (status: number) => {
        this.held.delete(response);
        if (response.destroyed) return;
        response.writeHead(status).end();
        if (status < 300) response.once('finish', () => (record.answered = status));
      };
      if (this.kind === 'failing' && tries <= 2 && this.next() < 0.4) return answer(500);
      if (this.kind === 'stalling' && tries <= 2 && this.next() < 0.4) {
        this.held.add(response);
        // Past the hub's 10 s timeout, or never (until the soak ends).
        if (this.next() < 0.5) setTimeout(() => answer(200), 11_000).unref();
        return;
      }
      answer(200);
    });
  }
}
