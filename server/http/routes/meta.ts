import Router from '@koa/router';
import type { AppServices } from '../context.js';

export function metaRoutes(services: AppServices): Router {
  const router = new Router();
  router.get('/api/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/api/pipelines', (ctx) => {
    ctx.body = [...services.pipelines.values()].map((pipeline) => ({
      name: pipeline.name,
      steps: pipeline.steps.map((step) => ({ name: step.name, timeout_s: step.timeoutS })),
      scopes: Object.entries(pipeline.scopes).map(([name, first]) => ({ name, first_step: first })),
    }));
  });
  return router;
}
