import type { Project } from '../wire.js';

export type { Project };

export type NewProject = Omit<Project, 'id' | 'created_at' | 'retention'> & Partial<Pick<Project, 'retention'>>;
export type ProjectChanges = Partial<Omit<Project, 'id' | 'created_at'>>;

/** Projects. A name is unique: a second one is a HubError 409 `name_taken`, however many try at once. */
export interface ProjectStore {
  list(): Promise<Project[]>;
  get(id: number): Promise<Project | undefined>;
  findByName(name: string): Promise<Project | undefined>;
  insert(project: NewProject): Promise<Project>;
  update(id: number, changes: ProjectChanges): Promise<Project | undefined>;
  /** removes the project and its runs; false if there was none */
  delete(id: number): Promise<boolean>;
}
