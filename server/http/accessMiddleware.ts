import type Koa from 'koa';
import type { Config } from '../config.js';
import { HubError } from '../errors.js';
import { checkHost, checkOrigin, isAuthorized } from '../access.js';

const PUBLIC_PATHS = new Set(['/login']);
/** Paths for programs, not people: a missing token is 401, never a redirect to the login page. */
const isForPrograms = (path: string) => path.startsWith('/api/') || path === '/metrics';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Host check, Origin check on state-changing requests, and the token when HUB_TOKEN is set. A
 * refused request closes its connection: a client without the token keeps no idle connection, nor
 * one that waits for a body nobody will read.
 */
export function accessMiddleware(config: Config): Koa.Middleware {
  return async (ctx, next) => {
    try {
      if (!admit(config, ctx)) {
        ctx.set('Connection', 'close');
        return;
      }
    } catch (error) {
      ctx.set('Connection', 'close');
      throw error;
    }
    await next();
  };
}

/** True for a request that may go on; false when it was answered (a redirect to the login page); throws a refusal. */
function admit(config: Config, ctx: Koa.Context): boolean {
  checkHost(config, ctx.get('host') || undefined);
  if (!SAFE_METHODS.has(ctx.method)) checkOrigin(config, ctx.get('origin') || undefined, ctx.get('host'));
  if (PUBLIC_PATHS.has(ctx.path) || isAuthorized(config, ctx.req)) return true;
  if (ctx.method === 'GET' && !isForPrograms(ctx.path) && ctx.accepts('html')) {
    ctx.redirect('/login');
    return false;
  }
  ctx.set('WWW-Authenticate', 'Bearer realm="run hub"');
  throw new HubError(401, 'unauthorized', 'This hub needs its token: send "Authorization: Bearer <token>", or sign in at /login');
}
