import type Koa from 'koa';
import type pino from 'pino';
import { HubError } from '../errors.js';

const SQLITE_BUSY = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);

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
      if (ctx.headerSent || !ctx.writable) return;
      ctx.status = error.status;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: { code: error.code, message: error.expose ? error.message : 'Internal server error', ...error.details } };
      if (error.status === 503) ctx.set('Retry-After', '1');
      if (error.headers) ctx.set(error.headers);
    }
  };
}

function toHubError(caught: unknown): HubError {
  if (caught instanceof HubError) return caught;
  const error = caught as { status?: number; expose?: boolean; message?: string; code?: string };
  if (error && typeof error.code === 'string' && SQLITE_BUSY.has(error.code)) {
    return new HubError(503, 'database_busy', 'The database is busy; try again shortly', { cause: caught });
  }
  if (error && typeof error.status === 'number' && error.status >= 400 && error.status < 500) {
    const code = error.status === 405 ? 'method_not_allowed' : error.status === 404 ? 'not_found' : 'bad_request';
    return new HubError(error.status, code, error.message ?? 'Bad request', { cause: caught });
  }
  return new HubError(500, 'internal', (error && error.message) || 'Internal server error', { cause: caught });
}
