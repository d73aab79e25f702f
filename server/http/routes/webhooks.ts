import Router from '@koa/router';
import { badRequest, describeValue, notFound } from '../../errors.js';
import { publicWebhook } from '../../store/webhooks.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../../wire.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { parseId, parseQueryInteger, readString, rejectUnknownFields, type Body } from '../validate.js';
import { loadProject } from './projects.js';

const MAX_WEBHOOKS_PER_PROJECT = 20;

function readUrl(body: Body): string {
  const url = readString(body, 'url', { required: true, max: 2048 })!;
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

function readEvents(body: Body): WebhookEvent[] {
  const events = body.events;
  if (events === undefined) return [...WEBHOOK_EVENTS];
  if (!Array.isArray(events) || events.length === 0 || events.some((event) => !(WEBHOOK_EVENTS as readonly unknown[]).includes(event))) {
    throw badRequest('invalid_field', `Expected \`events\` to be a non-empty list of ${WEBHOOK_EVENTS.join(', ')}, got ${describeValue(events)}`, { field: 'events' });
  }
  return [...new Set(events as WebhookEvent[])];
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
    const body = await readJsonBody(ctx);
    rejectUnknownFields(body, ['url', 'secret', 'events']);
    const url = readUrl(body);
    const secret = readString(body, 'secret', { required: true, max: 256 })!;
    const events = readEvents(body);
    if ((await webhooks.list(project.id)).length >= MAX_WEBHOOKS_PER_PROJECT) {
      throw badRequest('too_many_webhooks', `A project has at most ${MAX_WEBHOOKS_PER_PROJECT} webhooks`);
    }
    ctx.status = 201;
    ctx.body = publicWebhook(await webhooks.insert({ project_id: project.id, url, secret, events }));
  });

  router.delete('/:webhookId', async (ctx) => {
    const webhook = await loadWebhook(ctx.params);
    await webhooks.delete(webhook.id);
    ctx.status = 204;
  });

  router.get('/:webhookId/deliveries', async (ctx) => {
    const webhook = await loadWebhook(ctx.params);
    const limit = parseQueryInteger(ctx.query.limit, 'limit', 50, 500);
    ctx.body = await webhooks.listDeliveries(webhook.id, Math.max(limit, 1));
  });
  return router;
}
