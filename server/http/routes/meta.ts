import Router from '@koa/router';
import { notFound } from '../../errors.js';
import type { AppServices } from '../context.js';
import { messagesSchema, openApiDocument } from '../../schemas/openapi.js';
import { parseId } from '../validate.js';

export function metaRoutes(services: AppServices): Router {
  const router = new Router();
  router.get('/api/health', (ctx) => {
    // Liveness: ok while the process serves; `draining` from SIGTERM on (`/api/ready` answers 503 then).
    ctx.body = { status: 'ok', draining: services.drain.draining };
  });
  router.get('/api/ready', async (ctx) => {
    const report = await services.readiness();
    ctx.status = report.ok ? 200 : 503;
    ctx.body = report;
  });
  // The contract: the HTTP API as OpenAPI 3.1, the WebSocket messages as JSON Schema.
  router.get('/api/openapi.json', (ctx) => {
    ctx.body = openApiDocument();
  });
  router.get('/api/messages.schema.json', (ctx) => {
    ctx.body = messagesSchema();
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
