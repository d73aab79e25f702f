import { createHash } from 'node:crypto';
import Router from '@koa/router';
import type { Config } from '../../config.js';
import { HubError } from '../../errors.js';
import { TOKEN_COOKIE, tokenMatches } from '../../access.js';
import { contentSecurityPolicy } from '../securityHeaders.js';

const STYLE = `body{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;background:#f6f7f9}
form{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:1.5rem;display:grid;gap:.7rem;min-width:320px}
button{padding:.5rem;background:#1f5fbf;color:#fff;border:0;border-radius:6px;font:inherit}
input{padding:.4rem;font:inherit}p{color:#b3261e;margin:0}:focus-visible{outline:3px solid #ffbf47}`;
/** The page's one inline style, allowed by its hash (no 'unsafe-inline'). */
const STYLE_HASH = `sha256-${createHash('sha256').update(STYLE).digest('base64')}`;

const page = (message: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Run hub: sign in</title><link rel="icon" href="data:,">
<style>${STYLE}</style></head>
<body><form method="post" action="/login"><h1>Run hub</h1>
<label for="token">Access token (HUB_TOKEN)</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? `<p role="alert">${message}</p>` : ''}<button type="submit">Sign in</button></form></body></html>`;

/** A sign-in page for browsers when HUB_TOKEN is set: it sets an HttpOnly, SameSite=Strict cookie. */
export function loginRoutes(config: Config): Router {
  const router = new Router();
  router.get('/login', (ctx) => {
    ctx.set('Content-Security-Policy', contentSecurityPolicy(ctx.get('host'), [STYLE_HASH]));
    ctx.type = 'html';
    ctx.body = page('');
  });
  router.post('/login', async (ctx) => {
    if (!ctx.is('application/x-www-form-urlencoded')) throw new HubError(415, 'unsupported_media_type', 'Expected a form');
    let text = '';
    for await (const chunk of ctx.req) {
      text += chunk;
      if (text.length > 4096) throw new HubError(413, 'body_too_large', 'The form is too large');
    }
    const token = new URLSearchParams(text).get('token') ?? undefined;
    if (config.token === null || !tokenMatches(token, config.token)) {
      ctx.status = 401;
      ctx.set('Content-Security-Policy', contentSecurityPolicy(ctx.get('host'), [STYLE_HASH]));
      ctx.type = 'html';
      ctx.body = page(config.token === null ? 'This hub has no token: there is nothing to sign in to.' : 'That token is not right.');
      return;
    }
    ctx.cookies.set(TOKEN_COOKIE, encodeURIComponent(token!), { httpOnly: true, sameSite: 'strict', path: '/', overwrite: true, signed: false });
    ctx.redirect('/');
  });
  return router;
}
