import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { Config } from '../config.js';
import { HubError } from '../errors.js';

export const TOKEN_COOKIE = 'hub_token';
/** WebSocket subprotocol carrying the token for clients that cannot set headers: `hub-token.<token>`. */
export const TOKEN_PROTOCOL_PREFIX = 'hub-token.';
export const HUB_PROTOCOL = 'hub';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in constant time (over digests, so lengths do not leak either). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

/** The token a request carries: Bearer header, cookie, or WebSocket subprotocol. */
export function requestToken(request: http.IncomingMessage): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice(7).trim();
  const cookie = readCookie(request.headers.cookie, TOKEN_COOKIE);
  if (cookie) return cookie;
  const protocols = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const carried = protocols.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  return carried?.slice(TOKEN_PROTOCOL_PREFIX.length);
}

export function isAuthorized(config: Config, request: http.IncomingMessage): boolean {
  return config.token === null || tokenMatches(requestToken(request), config.token);
}

const hostName = (host: string) => host.toLowerCase().replace(/:\d+$/, '');

/**
 * The Host header must name this hub, so that a DNS-rebinding page (evil.example resolving to
 * 127.0.0.1) cannot reach a hub bound to loopback. Bound to another address, any Host is accepted
 * unless HUB_ALLOWED_HOSTS lists them.
 */
export function checkHost(config: Config, host: string | undefined): void {
  if (!host) throw new HubError(400, 'host_missing', 'The Host header is required');
  const name = hostName(host);
  const loopbackBound = LOOPBACK_HOSTS.has(config.host.toLowerCase()) || config.host.startsWith('127.');
  if (config.allowedHosts.includes(name) || config.allowedHosts.includes(host.toLowerCase())) return;
  if (loopbackBound ? LOOPBACK_HOSTS.has(name) || name.startsWith('127.') : config.allowedHosts.length === 0 || name === config.host.toLowerCase()) return;
  throw new HubError(403, 'host_not_allowed', `Host ${JSON.stringify(host.slice(0, 100))} is not a name of this hub; add it to HUB_ALLOWED_HOSTS`);
}

/**
 * A browser's Origin must be the hub's own (same host as the request) or in HUB_ALLOWED_ORIGINS,
 * so a page elsewhere cannot drive the hub or hijack its WebSocket. No Origin: not a browser.
 */
export function checkOrigin(config: Config, origin: string | undefined, host: string | undefined): void {
  if (origin === undefined) return;
  const normalised = origin.toLowerCase();
  if (config.allowedOrigins.includes(normalised)) return;
  try {
    if (host && new URL(normalised).host === host.toLowerCase()) return;
  } catch {
    // "null" or garbage: not allowed
  }
  throw new HubError(403, 'origin_not_allowed', `Origin ${JSON.stringify(origin.slice(0, 100))} may not use this hub; add it to HUB_ALLOWED_ORIGINS`);
}
