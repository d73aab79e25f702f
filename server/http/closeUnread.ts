import type Koa from 'koa';

/**
 * A response sent before its request was received whole (a 413, 415 or refusal answered before the
 * body is read) closes the connection: otherwise Node goes on reading the unread body to reuse the
 * connection, and a client sending it slowly holds the connection (until HUB_REQUEST_TIMEOUT_MS).
 */
export function closeUnreadRequests(): Koa.Middleware {
  return async (ctx, next) => {
    await next();
    if (!ctx.req.complete) ctx.set('Connection', 'close');
  };
}
