import type Koa from 'koa';
import type pino from 'pino';
import { errorBody, HubError, toHubError } from '../errors.js';

/** The one place that turns errors into responses: `{"error": {"code", "message", ...}}`. */
export function errorMiddleware(log: pino.Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HubError(404, 'not_found', `No route for ${ctx.method} ${ctx.path}`);
      }
    } catch (caught) {
      const error = toHubError(caught);
      if (!error.expose) log.error({ err: caught, method: ctx.method, path: ctx.path }, 'request failed');
      else if (error.code === 'storage_full') log.warn({ err: caught, method: ctx.method, path: ctx.path }, 'a write was refused: the disk is full');
      if (ctx.headerSent || !ctx.writable) return;
      ctx.status = error.status;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: errorBody(error) };
      if (error.status === 503) ctx.set('Retry-After', '1');
      if (error.headers) ctx.set(error.headers);
    }
  };
}
