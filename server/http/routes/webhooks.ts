import Router from '@koa/router';
import { badRequest, describeValue, notFound } from '../../errors.js';
import { publicWebhook } from '../../store/webhooks.js';
import { WEBHOOK_EVENTS } from '../../wire.js';
import { limitQuery, webhookBody } from '../../schemas/http.js';
import { parseWith } from '../../schemas/parse.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { parseId } from '../validate.js';
import { loadProject } from './projects.js';

const MAX_WEBHOOKS_PER_PROJECT = 20;

/** Beyond the schema: a URL the hub can POST to, without credentials in it. */
function checkUrl(url: string): string {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // reported below
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.username || parsed.password) {
    throw badRequest('invalid_field', `Expected \`url\` to be an http or https address without credentials, got ${describeValue(url)}`, { field: 'url' });
  }
  return parsed.href;
}

/** A project's webhooks: add, list, remove, and each one's recent deliveries. */
export function webhookRoutes(services: AppServices): Router {
  const router = new Router({ prefix: '/api/projects/:projectId/webhooks' });
  const { webhooks } = services;

  async function loadWebhook(params: Record<string, string | undefined>) {
    const project = await loadProject(services, params.projectId);
    const id = parseId(params.webhookId, 'webhookId');
    const webhook = await webhooks.get(id);
    if (!webhook || webhook.project_id !== project.id) throw notFound('Webhook', id);
    return webhook;
  }

  router.get('/', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    ctx.body = (await webhooks.list(project.id)).map(publicWebhook);
  });

  router.post('/', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const body = parseWith(webhookBody, await readJsonBody(ctx), 'body');
    const url = checkUrl(body.url);
    const { secret } = body;
    const events = [...new Set(body.events ?? WEBHOOK_EVENTS)];
    if ((await webhooks.list(project.id)).length >= MAX_WEBHOOKS_PER_PROJECT) {
      throw badRequest('too_many_webhooks', `A project has at most ${MAX_WEBHOOKS_PER_PROJECT} webhooks`);
    }
    ctx.status = 201;
    ctx.body = publicWebhook(await webhooks.insert({ project_id: project.id, url, secret, events }));
  });

  router.delete('/:webhookId', async (ctx) => {
    const webhook = await loadWebhook(ctx.params);
    // Its deliveries go with it (the store cascades); a retry waiting here is stopped, and one
    // waiting on another hub of a cluster finds the webhook gone when it re-reads it.
    await webhooks.delete(webhook.id);
    services.webhookDispatcher.webhookDeleted(webhook.id);
    ctx.status = 204;
  });

  router.get('/:webhookId/deliveries', async (ctx) => {
    const webhook = await loadWebhook(ctx.params);
    const { limit = 50 } = parseWith(limitQuery, ctx.query, 'query');
    ctx.body = await webhooks.listDeliveries(webhook.id, Math.max(limit, 1));
  });
  return router;
}
