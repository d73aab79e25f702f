import net from 'node:net';

export interface RedisCommandCounter {
  /** a Redis URL like `url`, through the counter */
  url: string;
  /** commands sent through the counter so far, by name (lower case) */
  counts(): Map<string, number>;
  /** all commands sent through the counter so far */
  total(): number;
  close(): Promise<void>;
}

const CRLF = Buffer.from('\r\n');

/**
 * Counts the commands clients send to a Redis: a loopback proxy in front of it that parses the
 * requests (RESP arrays of bulk strings, as ioredis sends them) on their way. What a script runs
 * inside Redis is not a command sent, so this counts what crosses the wire, unlike INFO commandstats.
 */
export async function startRedisCommandCounter(url: string): Promise<RedisCommandCounter> {
  const target = new URL(url);
  const counts = new Map<string, number>();
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (data: Buffer) => {
      pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
      for (;;) {
        const parsed = parseCommand(pending);
        if (!parsed) break;
        counts.set(parsed.name, (counts.get(parsed.name) ?? 0) + 1);
        pending = pending.subarray(parsed.end);
      }
    });
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as net.AddressInfo).port);
  return {
    url: proxied.toString(),
    counts: () => new Map(counts),
    total: () => [...counts.values()].reduce((sum, count) => sum + count, 0),
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The first whole command in `bytes` (its name and where it ends), or null while it is incomplete. */
function parseCommand(bytes: Buffer): { name: string; end: number } | null {
  const line = (at: number) => {
    const end = bytes.indexOf(CRLF, at);
    return end === -1 ? null : { text: bytes.toString('latin1', at + 1, end), next: end + 2 };
  };
  const header = line(0);
  if (!header) return null;
  if (bytes[0] !== 0x2a) return { name: bytes.toString('latin1', 0, header.next - 2).split(' ')[0].toLowerCase(), end: header.next }; // an inline command
  let at = header.next;
  let name = '';
  for (let i = 0; i < Number(header.text); i++) {
    const size = line(at);
    if (!size) return null;
    const end = size.next + Number(size.text) + 2;
    if (end > bytes.length) return null;
    if (i === 0) name = bytes.toString('latin1', size.next, end - 2).toLowerCase();
    at = end;
  }
  return { name, end: at };
}
