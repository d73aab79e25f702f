import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { badRequest, conflict, describeValue, notFound } from '../../errors.js';
import type { AppServices } from '../context.js';
import { readJsonBody } from '../jsonBody.js';
import { parseId, readRetention, readSettings, readString, rejectUnknownFields, type Body } from '../validate.js';
import type { Project } from '../../store/projects.js';

const FIELDS = ['name', 'doc_root', 'pipeline', 'settings', 'retention'] as const;

/** Looks up the project named by `:projectId`, or 404. */
export async function loadProject(services: AppServices, raw: string | undefined): Promise<Project> {
  const id = parseId(raw, 'projectId');
  const project = await services.projects.get(id);
  if (!project) throw notFound('Project', id);
  return project;
}

function readProjectFields(services: AppServices, body: Body, required: boolean) {
  rejectUnknownFields(body, FIELDS);
  const name = readString(body, 'name', { required, max: 100 });
  const docRoot = readString(body, 'doc_root', { required, max: 4096 });
  if (docRoot !== undefined) {
    if (!path.isAbsolute(docRoot)) throw badRequest('invalid_field', `Expected \`doc_root\` to be an absolute path, got ${describeValue(docRoot)}`, { field: 'doc_root' });
    let isDirectory = false;
    try {
      isDirectory = fs.statSync(docRoot).isDirectory();
    } catch {
      // reported below
    }
    if (!isDirectory) throw badRequest('invalid_field', `Expected \`doc_root\` to be an existing directory, got ${describeValue(docRoot)}`, { field: 'doc_root' });
  }
  const pipeline = readString(body, 'pipeline', { required, max: 64 });
  if (pipeline !== undefined && !services.pipelines.has(pipeline)) {
    throw badRequest('invalid_field', `Expected \`pipeline\` to be one of ${[...services.pipelines.keys()].join(', ')}, got ${describeValue(pipeline)}`, { field: 'pipeline' });
  }
  const settings = readSettings(body, 'settings');
  const retention = readRetention(body, 'retention');
  return {
    ...(retention !== undefined && { retention }),
    ...(name !== undefined && { name: name.trim() }),
    ...(docRoot !== undefined && { doc_root: path.normalize(docRoot) }),
    ...(pipeline !== undefined && { pipeline }),
    ...(settings !== undefined && { settings }),
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
    const fields = readProjectFields(services, await readJsonBody(ctx), true);
    await assertNameFree(services, fields.name);
    ctx.status = 201;
    ctx.body = await services.projects.insert({ settings: {}, ...(fields as Omit<Project, 'id' | 'created_at' | 'settings' | 'retention'>) });
  });
  router.get('/api/projects/:projectId', async (ctx) => {
    ctx.body = await loadProject(services, ctx.params.projectId);
  });
  router.patch('/api/projects/:projectId', async (ctx) => {
    const project = await loadProject(services, ctx.params.projectId);
    const fields = readProjectFields(services, await readJsonBody(ctx), false);
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
