import Router from '@koa/router';
import { HubError } from '../../errors.js';
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
    if (!services.sections) throw new HubError(501, 'not_supported', 'Sections are indexed in embedded mode only (not yet in cluster mode)');
    const page = await services.sections.page(run, query.after ?? 0, Math.max(1, query.limit ?? DEFAULT_LIMIT), query.from);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { run_id: run.id, ...page };
  });

  return router;
}
