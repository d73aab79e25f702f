import type { WsConnection } from './wsConnection.js';

/**
 * Keeps connections honest: a peer that missed a pong by the next ping is dead (or stopped) and is
 * dropped, freeing its subscriptions; a paused subscriber costs no memory, but one that has read
 * nothing for `stallTimeoutMs` while over its buffer limit is closed (1008) and may resume later.
 * Returns how to stop.
 */
export function startHeartbeat(connections: ReadonlySet<WsConnection>, heartbeatMs: number, stallTimeoutMs: number): () => void {
  const ping = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }, heartbeatMs);
  ping.unref();
  const stallCheck = setInterval(() => {
    const now = Date.now();
    for (const connection of connections) {
      if (connection.congested() && now - connection.congestedSince! > stallTimeoutMs) {
        connection.socket.close(1008, 'too slow: not reading');
        setTimeout(() => connection.socket.terminate(), 1000).unref();
      }
    }
  }, Math.min(1000, stallTimeoutMs / 2));
  stallCheck.unref();
  return () => {
    clearInterval(ping);
    clearInterval(stallCheck);
  };
}
