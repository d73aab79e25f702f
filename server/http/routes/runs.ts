import Router from '@koa/router';
import { notFound } from '../../errors.js';
import { cancelRunQuery, listRunsQuery, startRunBody } from '../../schemas/http.js';
import { parseWith } from '../../schemas/parse.js';
import type { RunRow } from '../../store/runs.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { parseId } from '../validate.js';
import { loadProject } from './projects.js';
import { RateLimiter } from '../rateLimit.js';

/** Looks up `:runId` within `:projectId`; a run of another project is 404 (projects are isolated). */
export async function loadRun(services: AppServices, params: Record<string, string | undefined>): Promise<RunRow> {
  const project = await loadProject(services, params.projectId);
  const runId = parseId(params.runId, 'runId');
  const run = await services.runs.get(runId);
  if (!run || run.project_id !== project.id) throw notFound('Run', runId);
  return run;
}

export function runRoutes(services: AppServices): Router {
  const router = new Router({ prefix: '/api/projects/:projectId/runs' });
  const json = services.runJson;
  const starts = new RateLimiter<number>(services.config.runsPerMinutePerProject);

  router.post('/', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const body = parseWith(startRunBody, await readJsonBody(ctx), 'body');
    const { scope = '', from_step: fromStep, triggered_by: triggeredBy = 'api', if_busy: ifBusy = 'reject' } = body;
    starts.take(project.id, 'runs per project');
    const run = await services.runService.start(project, { scope, fromStep, triggeredBy, ifBusy });
    ctx.status = 201;
    ctx.body = json(run);
  });

  router.get('/', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const { limit = 50, before } = parseWith(listRunsQuery, ctx.query, 'query');
    ctx.body = (await services.runs.listForProject(project.id, Math.max(limit, 1), before)).map(json);
  });

  router.get('/current', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const active = await services.runs.listActiveForProject(project.id);
    const current = active.find((run) => run.status === 'running') ?? active[0];
    ctx.body = current ? json(current) : 'null';
    ctx.type = 'application/json';
  });

  router.get('/:runId', async (ctx) => {
    ctx.body = json(await loadRun(services, ctx.params));
  });

  router.delete('/:runId', async (ctx) => {
    const run = await loadRun(services, ctx.params);
    if (parseWith(cancelRunQuery, ctx.query, 'query').purge === 'true') {
      await services.runService.purge(run);
      ctx.status = 204;
      return;
    }
    ctx.status = 202;
    ctx.body = json(await services.runService.cancel(run));
  });
  return router;
}
