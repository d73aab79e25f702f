import net from 'node:net';

/** At most this many slow connections at once; each is given up after HOLD_MS. */
const MAX_OPEN = 8;
const HOLD_MS = 60_000;

export interface SlowFigures {
  started: number;
  /** ended by the server (an answer such as 408/413, or the connection closed), by status line */
  endedByServer: Record<string, number>;
  /** still open when the soak gave up on them */
  givenUp: number;
}

/**
 * Clients that hurt by being slow: headers with a big Content-Length, then a body trickled a byte
 * a second or stalled; and headers sent a byte a second. The soak checks they slow nobody else
 * (the health probe's p99, every follower's copy) and the server survives them.
 */
export class SlowClients {
  readonly figures: SlowFigures = { started: 0, endedByServer: {}, givenUp: 0 };
  private readonly open = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  start(url: string, projectId: number, kind: 'body' | 'headers', trickleMs: number): void {
    if (this.open.size >= MAX_OPEN) return;
    const { hostname, port } = new URL(url);
    const host = `${hostname}:${port}`;
    const socket = net.connect(Number(port), hostname);
    this.open.add(socket);
    this.figures.started++;
    const head = `POST /api/projects/${projectId}/runs HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`;
    let rest = kind === 'body' ? '{"scope": "all", "triggered_by": "' : head;
    let answer = '';
    let givenUp = false;
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.open.delete(socket);
      clearInterval(trickle);
      clearTimeout(hold);
      this.timers.delete(hold);
      this.timers.delete(trickle);
      if (givenUp) return;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'closed';
      this.figures.endedByServer[status] = (this.figures.endedByServer[status] ?? 0) + 1;
    });
    socket.once('connect', () => {
      if (kind === 'body') socket.write(head);
    });
    // A byte per tick; `trickleMs` 0: nothing more after the start (a stalled body).
    const trickle = setInterval(() => {
      if (trickleMs === 0 || rest.length === 0 || socket.destroyed) return;
      socket.write(rest[0]);
      rest = rest.slice(1) || 'x'.repeat(1000);
    }, Math.max(trickleMs, 100));
    const hold = setTimeout(() => {
      givenUp = true;
      this.figures.givenUp++;
      socket.destroy();
    }, HOLD_MS);
    this.timers.add(hold).add(trickle);
  }

  /** Ends every slow connection still open (not counted as the server's doing). */
  closeAll(): void {
    for (const socket of this.open) {
      socket.removeAllListeners('close');
      socket.destroy();
    }
    for (const timer of this.timers) clearTimeout(timer);
    this.figures.givenUp += this.open.size;
    this.open.clear();
  }
}
