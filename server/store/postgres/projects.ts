import type pg from 'pg';
import { conflict } from '../../errors.js';
import type { Project, Retention } from '../../wire.js';
import type { NewProject, ProjectChanges, ProjectStore } from '../projects.js';

interface ProjectRow extends Omit<Project, 'settings' | 'retention'> {
  settings: string;
  retention: string;
}

const toProject = (row: ProjectRow): Project => ({ ...row, settings: JSON.parse(row.settings) as Record<string, string>, retention: JSON.parse(row.retention) as Retention });

/** Two hubs creating one name at once: the unique index decides, answered as 409. */
async function uniqueName<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const { code, constraint } = error as { code?: string; constraint?: string };
    if (code === '23505' && constraint === 'projects_name_key') throw conflict('name_taken', `A project named ${JSON.stringify(name)} already exists`, { field: 'name' });
    throw error;
  }
}

export class PostgresProjectStore implements ProjectStore {
  constructor(private readonly pool: pg.Pool) {}

  async list(): Promise<Project[]> {
    return (await this.pool.query<ProjectRow>('SELECT * FROM projects ORDER BY id')).rows.map(toProject);
  }

  async get(id: number): Promise<Project | undefined> {
    const row = (await this.pool.query<ProjectRow>('SELECT * FROM projects WHERE id = $1', [id])).rows[0];
    return row && toProject(row);
  }

  async findByName(name: string): Promise<Project | undefined> {
    const row = (await this.pool.query<ProjectRow>('SELECT * FROM projects WHERE name = $1', [name])).rows[0];
    return row && toProject(row);
  }

  async insert(project: NewProject): Promise<Project> {
    const { rows } = await uniqueName(project.name, () => this.pool.query<ProjectRow>(
      'INSERT INTO projects (name, doc_root, pipeline, settings, retention, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
      [project.name, project.doc_root, project.pipeline, JSON.stringify(project.settings), JSON.stringify(project.retention ?? {}), new Date().toISOString()],
    ));
    return toProject(rows[0]);
  }

  async update(id: number, changes: ProjectChanges): Promise<Project | undefined> {
    const current = await this.get(id);
    if (!current) return undefined;
    const next = { ...current, ...changes };
    const { rows } = await uniqueName(next.name, () => this.pool.query<ProjectRow>(
      'UPDATE projects SET name = $2, doc_root = $3, pipeline = $4, settings = $5, retention = $6 WHERE id = $1 RETURNING *',
      [id, next.name, next.doc_root, next.pipeline, JSON.stringify(next.settings), JSON.stringify(next.retention)],
    ));
    return rows[0] && toProject(rows[0]);
  }

  async delete(id: number): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM projects WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }
}
