import { useEffect, useState } from 'preact/hooks';
import { api, type Pipeline, type Project } from '../api';
import { ProjectForm } from './ProjectForm';

export function ProjectList({ pipelines }: { pipelines: Pipeline[] }) {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState('');

  useEffect(() => {
    api<Project[]>('GET', '/api/projects').then(setProjects, (e: Error) => setError(e.message));
  }, []);

  return (
    <main class="page">
      <div class="page-header">
        <h1>Projects</h1>
        {!creating && <button type="button" class="primary" onClick={() => setCreating(true)}>New project</button>}
      </div>
      {error && <p role="alert" class="field-error">{error}</p>}
      {creating && (
        <ProjectForm pipelines={pipelines} onSaved={(project) => (location.hash = `#/projects/${project.id}`)} onCancel={() => setCreating(false)} />
      )}
      {projects === null ? <p>Loading…</p> : projects.length === 0 ? <p>No projects yet. Create one to start a run.</p> : (
        <ul class="project-list">
          {projects.map((project) => (
            <li key={project.id}>
              <a href={`#/projects/${project.id}`}>{project.name}</a>
              <span class="muted"> · {project.pipeline} · {project.doc_root}</span>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
