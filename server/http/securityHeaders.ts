import type Koa from 'koa';

/** A Host value that can go into a policy as it is: a name or an IP literal, with an optional port. */
const PLAIN_HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * What a page of this hub may load: its own script and style files (no inline script, no eval),
 * fetches and the WebSocket to this hub only, and no framing: a page that frames the GUI could make
 * a user click Cancel or Delete (clickjacking). `styleHashes` let a page keep its own inline <style>.
 * The WebSocket's address is named as well as 'self' (older browsers do not match ws: with 'self').
 */
export function contentSecurityPolicy(host: string, styleHashes: readonly string[] = []): string {
  const sockets = PLAIN_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self'${styleHashes.map((hash) => ` '${hash}'`).join('')}`,
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The policy, `X-Frame-Options` for browsers without `frame-ancestors`, and no type sniffing, on every response. */
export function securityHeaders(): Koa.Middleware {
  return async (ctx, next) => {
    ctx.set({ 'Content-Security-Policy': contentSecurityPolicy(ctx.get('host')), 'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff' });
    await next();
  };
}
