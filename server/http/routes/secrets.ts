import Router from '@koa/router';
import type Koa from 'koa';
import { badRequest, HubError } from '../../errors.js';
import { checkSecretName, checkSecretValue } from '../../secrets/projectSecrets.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { loadProject } from './projects.js';

/**
 * The body `{"value": "…"}`, read so that no error echoes any of it: V8's JSON.parse message quotes
 * the text around a syntax error, and the schemas' messages echo the value they refuse.
 */
async function readSecretValue(ctx: Koa.Context): Promise<string> {
  let body;
  try {
    body = await readJsonBody(ctx);
  } catch (error) {
    if (error instanceof HubError && error.code === 'invalid_json') throw badRequest('invalid_json', 'The body is not valid JSON (its text is not repeated here: it holds a secret)');
    throw error;
  }
  const unknown = Object.keys(body).filter((key) => key !== 'value');
  if (unknown.length > 0) throw badRequest('unknown_field', 'The body has one field, `value`; it has others', { field: 'body' });
  return checkSecretValue(body.value);
}

/** A project's secrets, write-only: set, delete, and list names. No answer ever holds a value. */
export function secretRoutes(services: AppServices): Router {
  const router = new Router({ prefix: '/api/projects/:projectId/secrets' });
  const { secrets } = services;

  router.get('/', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await secrets.list(project.id);
  });

  router.put('/:name', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const name = checkSecretName(ctx.params.name ?? '');
    const value = await readSecretValue(ctx);
    const { created, ...secret } = await secrets.set(project.id, name, value);
    ctx.status = created ? 201 : 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = secret;
  });

  router.delete('/:name', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    await secrets.delete(project.id, checkSecretName(ctx.params.name ?? ''));
    ctx.status = 204;
  });
  return router;
}
