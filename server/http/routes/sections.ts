import Router from '@koa/router';
import { sectionPageQuery } from '../../schemas/http.js';
import { parseWith } from '../../schemas/parse.js';
import type { AppServices } from '../context.js';
import { loadRun } from './runs.js';

const DEFAULT_LIMIT = 1000;

/** The sections a run's steps mark, a page at a time (server/sections/). */
export function sectionRoutes(services: AppServices): Router {
  const router = new Router({ prefix: '/api/projects/:projectId/runs/:runId/sections' });

  router.get('/', async (ctx) => {
    const run = await loadRun(services, ctx.params);
    const query = parseWith(sectionPageQuery, ctx.query, 'query');
    const page = await services.sections.page(run, query.after ?? 0, Math.max(1, query.limit ?? DEFAULT_LIMIT), query.from);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { run_id: run.id, ...page };
  });

  return router;
}
