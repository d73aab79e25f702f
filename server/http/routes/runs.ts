import Router from '@koa/router';
import { badRequest, describeValue, notFound } from '../../errors.js';
import type { RunRow } from '../../store/runs.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { parseId, parseQueryInteger, readString, rejectUnknownFields } from '../validate.js';
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
    const body = await readJsonBody(ctx);
    rejectUnknownFields(body, ['scope', 'from_step', 'triggered_by', 'if_busy']);
    const fromStep = readString(body, 'from_step', { required: false, max: 64 });
    const scope = readString(body, 'scope', { required: fromStep === undefined, max: 64 }) ?? '';
    if (fromStep !== undefined && body.scope !== undefined) {
      throw badRequest('invalid_field', 'Send either `scope` or `from_step`, not both', { field: 'from_step' });
    }
    const triggeredBy = readString(body, 'triggered_by', { required: false, max: 64 }) ?? 'api';
    const ifBusy = body.if_busy ?? 'reject';
    if (ifBusy !== 'reject' && ifBusy !== 'queue') {
      throw badRequest('invalid_field', `Expected \`if_busy\` to be "reject" or "queue", got ${describeValue(ifBusy)}`, { field: 'if_busy' });
    }
    starts.take(project.id, 'runs per project');
    const run = await services.runService.start(project, { scope, fromStep, triggeredBy, ifBusy });
    ctx.status = 201;
    ctx.body = json(run);
  });

  router.get('/', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const limit = parseQueryInteger(ctx.query.limit, 'limit', 50, 500);
    const before = ctx.query.before === undefined ? undefined : parseId(String(ctx.query.before), 'before');
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
    if (ctx.query.purge !== undefined && ctx.query.purge !== 'true' && ctx.query.purge !== 'false') {
      throw badRequest('invalid_query', `Expected \`purge\` to be "true" or "false", got ${describeValue(ctx.query.purge)}`, { field: 'purge' });
    }
    if (ctx.query.purge === 'true') {
      await services.runService.purge(run);
      ctx.status = 204;
      return;
    }
    ctx.status = 202;
    ctx.body = json(await services.runService.cancel(run));
  });
  return router;
}
