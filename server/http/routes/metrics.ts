import Router from '@koa/router';
import type { AppServices } from '../context.js';

/** Prometheus text format; behind the token like every route (the access middleware runs first). */
export function metricsRoutes(services: AppServices): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = services.metrics.contentType;
    ctx.body = await services.metrics.render();
  });
  return router;
}
