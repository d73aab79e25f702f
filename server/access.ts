import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import type { Config } from './config.js';
import { HubError } from './errors.js';

export const TOKEN_COOKIE = 'hub_token';
/** WebSocket subprotocol carrying the token for clients that cannot set headers: `hub-token.<token>`. */
export const TOKEN_PROTOCOL_PREFIX = 'hub-token.';
export const HUB_PROTOCOL = 'hub';

const LOOPBACK_NAMES = new Set(['localhost', '[::1]']);

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in constant time (over digests, so lengths do not leak either). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

/** A cookie's value; a value that is not valid percent-encoding is a bad token, not a server error. */
function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key !== name) continue;
    try {
      return decodeURIComponent(rest.join('='));
    } catch {
      throw new HubError(401, 'unauthorized', `The ${name} cookie is not valid percent-encoding; sign in again at /login`);
    }
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

/** The name part of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), lower-cased; null if malformed. */
export function hostName(host: string): string | null {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/i.exec(host.trim());
  return match ? match[1].toLowerCase() : null;
}

/** Exactly a loopback literal: an IPv4 address in 127.0.0.0/8, [::1], or localhost (not 127.evil.example). */
export function isLoopbackName(name: string): boolean {
  if (LOOPBACK_NAMES.has(name)) return true;
  return net.isIPv4(name) && name.split('.')[0] === '127';
}

const isLoopbackAddress = (address: string) => address === '::1' || isLoopbackName(address.toLowerCase());

/**
 * The Host header must name this hub, so that a DNS-rebinding page (evil.example resolving to
 * 127.0.0.1) cannot reach a hub bound to loopback. Bound to another address, any Host is accepted
 * unless HUB_ALLOWED_HOSTS lists them.
 */
export function checkHost(config: Config, host: string | undefined): void {
  if (!host) throw new HubError(400, 'host_missing', 'The Host header is required');
  const name = hostName(host);
  if (name === null) throw new HubError(400, 'host_invalid', `Host ${JSON.stringify(host.slice(0, 100))} is not a host name with an optional port`);
  if (config.allowedHosts.includes(name) || config.allowedHosts.includes(host.toLowerCase())) return;
  const loopbackBound = isLoopbackAddress(config.host);
  if (loopbackBound ? isLoopbackName(name) : config.allowedHosts.length === 0 || name === config.host.toLowerCase()) return;
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
