import Router from '@koa/router';
import { notFound } from '../../errors.js';
import type { AppServices } from '../context.js';
import { parseId } from '../validate.js';

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
  // A run by its id alone (ids are unique across projects): how scripts and the CLI find a run's project.
  router.get('/api/runs/:runId', async (ctx) => {
    const runId = parseId(ctx.params.runId, 'runId');
    const run = await services.runs.get(runId);
    if (!run) throw notFound('Run', runId);
    ctx.body = services.runJson(run);
  });
  return router;
}
