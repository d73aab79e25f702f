import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type pino from 'pino';
import type { Config } from '../config.js';
import { errorBody, HubError, protocolError, toHubError } from '../errors.js';
import { checkHost, checkOrigin, HUB_PROTOCOL, isAuthorized } from '../access.js';
import type { LogHub } from '../hub/logHub.js';
import { parseClientMessage, type ClientMessage } from './protocol.js';
import { startHeartbeat } from './heartbeat.js';
import { WsConnection } from './wsConnection.js';
import { closeSpread, drainingError } from '../http/drain.js';
import type { SentCounter } from '../metrics/hubMetrics.js';

export const WS_PATH = '/ws';
/** ws closes the connection past maxPayload; up to this size we answer an error and keep it open. */
const HARD_FRAME_LIMIT = 1024 * 1024;

export interface HubSocketServer {
  /** open connections (for the metrics) */
  readonly connectionCount: number;
  /**
   * Refuses new connections (503 `draining`), then closes the open ones with 1012 (Service Restart)
   * evenly over `durationMs`: their clients reconnect to the other hubs a few at a time.
   */
  drain(durationMs: number): Promise<void>;
  close(): Promise<void>;
}

/** The WebSocket endpoint: parses client messages, routes them to the hub, and keeps connections alive. */
export function attachWebSocketServer(server: http.Server, hub: LogHub, config: Config, log: pino.Logger, countSent?: SentCounter): HubSocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: Math.max(HARD_FRAME_LIMIT, config.wsMaxFrameBytes),
    perMessageDeflate: false,
    // Never echo a token-carrying subprotocol back: select "hub" when offered, else none.
    handleProtocols: (protocols) => (protocols.has(HUB_PROTOCOL) ? HUB_PROTOCOL : false),
  });
  const connections = new Set<WsConnection>();

  const perAddress = new Map<string, number>();
  let draining = false;

  // Nothing a handshake carries may end the process: every exception here becomes a refusal.
  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    try {
      const refusal = refuseUpgrade(request);
      if (refusal) return refuse(socket, refusal);
      wss.handleUpgrade(request, socket, head, (ws) => {
        try {
          wssOnConnection(ws, request.socket.remoteAddress ?? '');
        } catch (error) {
          log.error({ err: error }, 'websocket connection setup failed');
          ws.terminate();
        }
      });
    } catch (error) {
      log.error({ err: error, url: request.url?.slice(0, 200) }, 'websocket handshake failed');
      refuse(socket, new HubError(400, 'bad_request', 'The WebSocket handshake could not be read'));
    }
  });

  function refuse(socket: Duplex, refusal: HubError): void {
    if (socket.destroyed) return;
    const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
    socket.end(`HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  /** Path, Host, Origin (cross-site WebSocket hijacking), token, and connections per address. */
  function refuseUpgrade(request: http.IncomingMessage): HubError | null {
    if ((request.url ?? '').split('?')[0] !== WS_PATH) return new HubError(404, 'not_found', `WebSockets are served at ${WS_PATH}`);
    if (draining) return drainingError();
    try {
      checkHost(config, request.headers.host);
      checkOrigin(config, request.headers.origin, request.headers.host);
      if (!isAuthorized(config, request)) return new HubError(401, 'unauthorized', 'This hub needs its token');
    } catch (error) {
      if (error instanceof HubError) return error;
      throw error;
    }
    if ((perAddress.get(request.socket.remoteAddress ?? '') ?? 0) >= config.wsMaxConnectionsPerAddress) {
      return new HubError(429, 'too_many_connections', `At most ${config.wsMaxConnectionsPerAddress} WebSocket connections per address`);
    }
    return null;
  }

  function wssOnConnection(ws: WebSocket, address: string): void {
    const connection = new WsConnection(ws, config.wsHighWaterBytes, countSent);
    connections.add(connection);
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    ws.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
    ws.on('pong', () => (connection.alive = true));
    // One message at a time per connection, so an unsubscribe never overtakes its subscribe.
    let queue = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      queue = queue.then(() => clientOnMessage(connection, data as Buffer, isBinary));
    });
    ws.on('error', () => {}); // a protocol error closes the socket; 'close' cleans up
    ws.on('close', () => {
      connections.delete(connection);
      hub.dropSink(connection);
    });
  }

  async function clientOnMessage(connection: WsConnection, data: Buffer, isBinary: boolean): Promise<void> {
    let message: ClientMessage | undefined;
    try {
      if (isBinary) throw protocolError('binary_not_supported', 'Send JSON text frames, not binary ones');
      if (data.length > config.wsMaxFrameBytes) throw protocolError('frame_too_large', `A message may be at most ${config.wsMaxFrameBytes} bytes, got ${data.length}`);
      message = parseClientMessage(data.toString('utf8'));
      await handle(connection, message);
    } catch (caught) {
      const error = toHubError(caught);
      if (!error.expose) log.error({ err: caught }, 'websocket message failed');
      connection.sendError({ ...ids(message), ...errorBody(error) });
    }
  }

  async function handle(connection: WsConnection, message: ClientMessage): Promise<void> {
    if (message.type === 'unsubscribe') {
      if ('runId' in message) connection.runs.delete(message.runId) && hub.unsubscribeRun(connection, message.runId);
      else connection.projects.delete(message.projectId) && hub.unsubscribeProject(connection, message.projectId);
      return;
    }
    const isNew = 'runId' in message ? !connection.runs.has(message.runId) : !connection.projects.has(message.projectId);
    if (isNew && connection.subscriptionCount >= config.wsMaxSubscriptions) {
      throw protocolError('too_many_subscriptions', `A connection may hold at most ${config.wsMaxSubscriptions} subscriptions`, ids(message));
    }
    if ('projectId' in message) {
      await hub.subscribeProject(connection, message.projectId);
      connection.projects.add(message.projectId);
      connection.send('subscribed', JSON.stringify({ type: 'subscribed', project_id: message.projectId }));
      return;
    }
    connection.runs.add(message.runId);
    try {
      await hub.subscribeRun(connection, message.runId, message.startAt, {
        timestamps: message.timestamps,
        sections: message.sections,
        onStart: (offset) => connection.send('subscribed', JSON.stringify({ type: 'subscribed', run_id: message.runId, offset })),
      });
    } catch (error) {
      connection.runs.delete(message.runId);
      throw error;
    }
  }

  const stopHeartbeat = startHeartbeat(connections, config.wsHeartbeatMs, config.wsStallTimeoutMs);

  let closing: Promise<void> | undefined;
  return {
    get connectionCount() {
      return connections.size;
    },
    drain(durationMs) {
      draining = true;
      return closeSpread(connections, durationMs, (connection) => connection.socket.close(1012, 'hub restarting: reconnect'));
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        stopHeartbeat();
        for (const connection of connections) connection.socket.close(1001, 'server shutting down');
        wss.close(() => resolve());
        setTimeout(() => {
          for (const connection of connections) connection.socket.terminate();
        }, 1000).unref();
      });
      return closing;
    },
  };
}

const ids = (message: ClientMessage | undefined) => ({
  run_id: message && 'runId' in message ? message.runId : undefined,
  project_id: message && 'projectId' in message ? message.projectId : undefined,
});
