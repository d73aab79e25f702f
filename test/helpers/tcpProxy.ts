import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Points new connections at `port` and cuts every open one (what a failover's DNS or VIP switch does). */
  retarget(port: number): void;
  /** Bytes that have waited out the delay, each way, so far (a test can see the proxy carried its traffic). */
  readonly forwarded: number;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /**
   * Every chunk, each way, is passed on this long after it arrived, in order: a slow link (this
   * machine's kernel has no `tc netem`, so latency is added here, at the transport, not on the wire).
   */
  delayMs?: number;
}

/**
 * Passes what `from` sends on to `to` `delayMs` later, in order (one queue, one timer); the end
 * too. Backpressure holds: `from` is paused while `to` cannot take more.
 */
function delayedPipe(from: net.Socket, to: net.Socket, delayMs: number, count: (bytes: number) => void): void {
  if (delayMs <= 0) {
    from.pipe(to);
    from.on('data', (chunk: Buffer) => count(chunk.length));
    return;
  }
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | null = null;
  const drain = () => {
    timer = null;
    while (queue.length > 0 && queue[0].due <= Date.now()) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
        continue;
      }
      count(chunk.length);
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    }
    if (queue.length > 0) timer = setTimeout(drain, queue[0].due - Date.now());
  };
  const push = (chunk: Buffer | null) => {
    queue.push({ due: Date.now() + delayMs, chunk });
    timer ??= setTimeout(drain, delayMs);
  };
  from.on('data', (chunk: Buffer) => push(chunk));
  from.on('end', () => push(null));
  to.on('close', () => {
    if (timer) clearTimeout(timer);
    queue.length = 0;
  });
}

/**
 * A loopback address in front of one server: a test can move it to another (the clients' one URL
 * through a failover) or slow every connection down (`delayMs`).
 */
export async function startTcpProxy(targetPort: number, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  let target = targetPort;
  let forwarded = 0;
  const count = (bytes: number) => (forwarded += bytes);
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    delayedPipe(client, upstream, options.delayMs ?? 0, count);
    delayedPipe(upstream, client, options.delayMs ?? 0, count);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get forwarded() {
      return forwarded;
    },
    retarget(port) {
      target = port;
      for (const socket of open) socket.destroy();
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
