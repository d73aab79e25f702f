import type pino from 'pino';
import { demoDocsDir } from './paths.js';
import type { Pipelines } from './pipelines/load.js';
import type { ProjectStore } from './store/projects.js';

export const DEMO_PROJECT_NAME = 'Demo glossary';

/** On first start, a demo project on the shipped sample documents, so a run works out of the box. */
export async function seedDemoProject(projects: ProjectStore, pipelines: Pipelines, log: pino.Logger): Promise<void> {
  if ((await projects.list()).length > 0 || !pipelines.has('glossary')) return;
  const project = await projects.insert({
    name: DEMO_PROJECT_NAME,
    doc_root: demoDocsDir,
    pipeline: 'glossary',
    settings: { llm_provider: 'none', llm_model: 'deterministic' },
  });
  log.info({ project_id: project.id }, 'created the demo project');
}
