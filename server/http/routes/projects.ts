import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { badRequest, conflict, describeValue, notFound } from '../../errors.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { parseId } from '../validate.js';
import { parseWith } from '../../schemas/parse.js';
import { createProjectBody, updateProjectBody } from '../../schemas/http.js';
import type { Project } from '../../store/projects.js';

/** Looks up the project named by `:projectId`, or 404. */
export async function loadProject(services: AppServices, raw: string | undefined): Promise<Project> {
  const id = parseId(raw, 'projectId');
  const project = await services.projects.get(id);
  if (!project) throw notFound('Project', id);
  return project;
}

/** The schema checks shapes; what depends on the machine and the pipelines file is checked here. */
function checkProjectFields<T extends { doc_root?: string; pipeline?: string }>(services: AppServices, fields: T): T {
  if (fields.doc_root !== undefined) {
    if (!path.isAbsolute(fields.doc_root)) throw badRequest('invalid_field', `Expected \`doc_root\` to be an absolute path, got ${describeValue(fields.doc_root)}`, { field: 'doc_root' });
    let isDirectory = false;
    try {
      isDirectory = fs.statSync(fields.doc_root).isDirectory();
    } catch {
      // reported below
    }
    if (!isDirectory) throw badRequest('invalid_field', `Expected \`doc_root\` to be an existing directory, got ${describeValue(fields.doc_root)}`, { field: 'doc_root' });
  }
  if (fields.pipeline !== undefined && !services.pipelines.has(fields.pipeline)) {
    throw badRequest('invalid_field', `Expected \`pipeline\` to be one of ${[...services.pipelines.keys()].join(', ')}, got ${describeValue(fields.pipeline)}`, { field: 'pipeline' });
  }
  return {
    ...fields,
    ...(fields.doc_root !== undefined && { doc_root: path.normalize(fields.doc_root) }),
  };
}

async function assertNameFree(services: AppServices, name: string | undefined, exceptId?: number) {
  if (name === undefined) return;
  const existing = await services.projects.findByName(name);
  if (existing && existing.id !== exceptId) throw conflict('name_taken', `A project named ${JSON.stringify(name)} already exists (${existing.id})`, { field: 'name' });
}

export function projectRoutes(services: AppServices): Router {
  const router = new Router();
  router.get('/api/projects', async (ctx) => {
    ctx.body = await services.projects.list();
  });
  router.post('/api/projects', async (ctx) => {
    const body = parseWith(createProjectBody, await readJsonBody(ctx), 'body');
    const fields = checkProjectFields(services, { ...body, name: body.name.trim() });
    await assertNameFree(services, fields.name);
    ctx.status = 201;
    ctx.body = await services.projects.insert({ ...fields, settings: fields.settings ?? {} });
  });
  router.get('/api/projects/:projectId', async (ctx) => {
    ctx.body = await loadProject(services, ctx.params.projectId);
  });
  router.patch('/api/projects/:projectId', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const body = parseWith(updateProjectBody, await readJsonBody(ctx), 'body');
    const fields = checkProjectFields(services, { ...body, ...(body.name !== undefined && { name: body.name.trim() }) });
    await assertNameFree(services, fields.name, project.id);
    ctx.body = await services.projects.update(project.id, fields);
  });
  router.delete('/api/projects/:projectId', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    await services.runService.deleteProject(project);
    ctx.status = 204;
  });
  return router;
}
