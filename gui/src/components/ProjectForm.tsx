import { useState } from 'preact/hooks';
import { api, ApiError, type Pipeline, type Project } from '../api';
import { runDetached } from '../report';

interface Props {
  pipelines: Pipeline[];
  project?: Project;
  onSaved: (project: Project) => void;
  onCancel?: () => void;
}

type Settings = { name: string; value: string }[];

/** Create or edit a project; the server's validation errors show next to their field. */
export function ProjectForm({ pipelines, project, onSaved, onCancel }: Props) {
  const [name, setName] = useState(project?.name ?? '');
  const [docRoot, setDocRoot] = useState(project?.doc_root ?? '');
  const [pipeline, setPipeline] = useState(project?.pipeline ?? pipelines[0]?.name ?? '');
  const [settings, setSettings] = useState<Settings>(Object.entries(project?.settings ?? { llm_provider: '', llm_model: '' }).map(([n, value]) => ({ name: n, value })));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    const body = {
      name,
      doc_root: docRoot,
      pipeline,
      settings: Object.fromEntries(settings.filter((s) => s.name.trim() !== '').map((s) => [s.name.trim(), s.value])),
    };
    try {
      const saved = project ? await api<Project>('PATCH', `/api/projects/${project.id}`, body) : await api<Project>('POST', '/api/projects', body);
      onSaved(saved);
    } catch (error) {
      const apiError = error as ApiError;
      const field = apiError.field?.split('.')[0] ?? 'form';
      setErrors({ [field]: apiError.message });
    } finally {
      setBusy(false);
    }
  }

  const fieldError = (field: string) =>
    errors[field] ? <p class="field-error" id={`error-${field}`} role="alert">{errors[field]}</p> : null;
  const described = (field: string) => (errors[field] ? `error-${field}` : undefined);

  return (
    <form class="project-form" onSubmit={(event) => runDetached('saving the project', submit(event))} aria-label={project ? 'Edit project' : 'New project'}>
      <div class="field">
        <label for="project-name">Name</label>
        <input id="project-name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} aria-invalid={!!errors.name} aria-describedby={described('name')} required />
        {fieldError('name')}
      </div>
      <div class="field">
        <label for="project-doc-root">Document folder (absolute path on the server)</label>
        <input id="project-doc-root" value={docRoot} onInput={(e) => setDocRoot((e.target as HTMLInputElement).value)} aria-invalid={!!errors.doc_root} aria-describedby={described('doc_root')} required />
        {fieldError('doc_root')}
      </div>
      <div class="field">
        <label for="project-pipeline">Pipeline</label>
        <select id="project-pipeline" value={pipeline} onChange={(e) => setPipeline((e.target as HTMLSelectElement).value)} aria-invalid={!!errors.pipeline}>
          {pipelines.map((p) => <option key={p.name} value={p.name}>{p.name}</option>)}
        </select>
        {fieldError('pipeline')}
      </div>
      <fieldset class="field">
        <legend>Settings (passed to steps as HUB_SETTING_&lt;NAME&gt;)</legend>
        {settings.map((setting, index) => (
          <div class="setting-row" key={index}>
            <input aria-label={`Setting ${index + 1} name`} value={setting.name} onInput={(e) => setSettings(settings.map((s, i) => (i === index ? { ...s, name: (e.target as HTMLInputElement).value } : s)))} />
            <input aria-label={`Setting ${index + 1} value`} value={setting.value} onInput={(e) => setSettings(settings.map((s, i) => (i === index ? { ...s, value: (e.target as HTMLInputElement).value } : s)))} />
            <button type="button" onClick={() => setSettings(settings.filter((_, i) => i !== index))} aria-label={`Remove setting ${setting.name || index + 1}`}>Remove</button>
          </div>
        ))}
        <button type="button" onClick={() => setSettings([...settings, { name: '', value: '' }])}>Add setting</button>
        {fieldError('settings')}
      </fieldset>
      {fieldError('form')}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>{project ? 'Save project' : 'Create project'}</button>
        {onCancel && <button type="button" onClick={onCancel}>Cancel</button>}
      </div>
    </form>
  );
}
