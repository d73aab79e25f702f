import type http from 'node:http';
import type net from 'node:net';

/**
 * Caps the connections that have not sent a whole request head yet. Each holds a descriptor while
 * it waits, and nothing is known of its client until its head is read: a crowd of slow or silent
 * clients could hold every descriptor the process has, and then no one could connect, not even a
 * client with the token. Past `max` of them the one waiting longest is closed (a real client sends
 * its head within milliseconds of connecting). A connection stops waiting with its first whole head
 * or its WebSocket upgrade; it does not wait again when idle between requests (keepAliveTimeout
 * bounds those, and a refused request closes its connection, so only admitted clients keep one).
 */
export function limitWaitingConnections(server: http.Server, max: number): void {
  const waiting = new Set<net.Socket>(); // in the order they connected
  const stopWaiting = (request: http.IncomingMessage) => waiting.delete(request.socket);
  server.on('connection', (socket: net.Socket) => {
    waiting.add(socket);
    socket.once('close', () => waiting.delete(socket));
    if (waiting.size > max) {
      const oldest = waiting.values().next().value!;
      waiting.delete(oldest);
      oldest.destroy();
    }
  });
  server.on('request', stopWaiting);
  server.on('upgrade', stopWaiting);
}
