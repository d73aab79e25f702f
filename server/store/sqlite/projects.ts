import { conflict } from '../../errors.js';
import type { Project, Retention } from '../../wire.js';
import type { NewProject, ProjectChanges, ProjectStore } from '../projects.js';
import type { Db } from './db.js';

interface ProjectRow extends Omit<Project, 'settings' | 'retention'> {
  settings: string;
  retention: string;
}

/** Two requests creating one name at once: the database's unique index decides, answered as 409. */
async function uniqueName<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === 'SQLITE_CONSTRAINT' && /UNIQUE.*projects\.name/.test(message ?? '')) {
      throw conflict('name_taken', `A project named ${JSON.stringify(name)} already exists`, { field: 'name' });
    }
    throw error;
  }
}

const toProject = (row: ProjectRow): Project => ({ ...row, settings: JSON.parse(row.settings) as Record<string, string>, retention: JSON.parse(row.retention) as Retention });

export class SqliteProjectStore implements ProjectStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<Project[]> {
    const rows = await this.db.all<ProjectRow[]>('SELECT * FROM projects ORDER BY id');
    return rows.map(toProject);
  }

  async get(id: number): Promise<Project | undefined> {
    const row = await this.db.get<ProjectRow>('SELECT * FROM projects WHERE id = ?', id);
    return row && toProject(row);
  }

  async findByName(name: string): Promise<Project | undefined> {
    const row = await this.db.get<ProjectRow>('SELECT * FROM projects WHERE name = ?', name);
    return row && toProject(row);
  }

  async insert(project: NewProject): Promise<Project> {
    const createdAt = new Date().toISOString();
    const result = await uniqueName(project.name, () => this.db.run(
      'INSERT INTO projects (name, doc_root, pipeline, settings, retention, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      project.name, project.doc_root, project.pipeline, JSON.stringify(project.settings), JSON.stringify(project.retention ?? {}), createdAt,
    ));
    return (await this.get(result.lastID!))!;
  }

  async update(id: number, changes: ProjectChanges): Promise<Project | undefined> {
    const current = await this.get(id);
    if (!current) return undefined;
    const next = { ...current, ...changes };
    await uniqueName(next.name, () => this.db.run(
      'UPDATE projects SET name = ?, doc_root = ?, pipeline = ?, settings = ?, retention = ? WHERE id = ?',
      next.name, next.doc_root, next.pipeline, JSON.stringify(next.settings), JSON.stringify(next.retention), id,
    ));
    return this.get(id);
  }

  async delete(id: number): Promise<boolean> {
    const result = await this.db.run('DELETE FROM projects WHERE id = ?', id);
    return (result.changes ?? 0) > 0;
  }
}
