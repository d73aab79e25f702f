import { type ChildProcess } from 'node:child_process';
import net from 'node:net';

/** What the local servers (postgres.ts, redis.ts) share. */

/** A port nobody listens on at this moment, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Polls `ready` until it answers true; gives up after 20 s or when the server exited, with its output. */
export async function waitUntil(ready: () => Promise<boolean>, what: string, exited: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ready())) {
    if (Date.now() > deadline || exited()) throw new Error(`${what} did not start:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface LocalServer {
  /** what hubs and workers are given: the password in it, so never print it (see `redactUrl`) */
  url: string;
  process: ChildProcess;
  /** stops the server, at once if it already exited; a server not gone after a grace is killed */
  stop(): Promise<void>;
  /** SIGKILLs the server and everything it started, at once (a second Ctrl-C); waits for nothing */
  kill(): void;
}
