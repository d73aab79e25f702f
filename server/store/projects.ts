import type { Project } from '../wire.js';

export type { Project };

/** Projects. A name is unique: a second one is a HubError 409 `name_taken`, however many try at once. */
export interface ProjectStore {
  list(): Promise<Project[]>;
  get(id: number): Promise<Project | undefined>;
  findByName(name: string): Promise<Project | undefined>;
  insert(project: Omit<Project, 'id' | 'created_at'>): Promise<Project>;
  update(id: number, changes: Partial<Omit<Project, 'id' | 'created_at'>>): Promise<Project | undefined>;
  /** removes the project and its runs; false if there was none */
  delete(id: number): Promise<boolean>;
}
