import { useEffect, useState } from 'preact/hooks';
import { api, isActive, type Pipeline, type Project, type Run } from '../api';
import { formatTime, runDuration } from '../format';
import type { HubSocket } from '../socket';
import { ActiveRun } from './ActiveRun';
import { LogView } from './LogView';
import { ProjectForm } from './ProjectForm';
import { ProjectSecrets } from './ProjectSecrets';
import { StatusBadge } from './StatusBadge';
import { runDetached } from '../report';

/** A project: start buttons per scope, the active run, the queue, and the run history, live. */
export function ProjectPage({ projectId, pipelines, socket }: { projectId: number; pipelines: Pipeline[]; socket: HubSocket }) {
  const [project, setProject] = useState<Project | null>(null);
  const [runs, setRuns] = useState<Run[]>([]);
  const [editing, setEditing] = useState(false);
  const [message, setMessage] = useState('');

  useEffect(() => {
    let alive = true;
    api<Project>('GET', `/api/projects/${projectId}`).then((p) => alive && setProject(p), (e: Error) => setMessage(e.message));
    const load = () => api<Run[]>('GET', `/api/projects/${projectId}/runs?limit=50`).then((list) => alive && setRuns(list));
    runDetached('loading the runs', load());
    // Runs started elsewhere (a script, another browser) appear through the project subscription.
    const unsubscribe = socket.subscribeProject(projectId, (run, removed) => {
      setRuns((list) => {
        if (removed) return list.filter((r) => r.id !== run.id);
        const index = list.findIndex((r) => r.id === run.id);
        if (index === -1) return [run, ...list].sort((a, b) => b.id - a.id);
        const copy = [...list];
        copy[index] = run;
        return copy;
      });
    });
    // After a reconnect, records may have changed while we were away.
    const offState = socket.onState((state) => state === 'open' && runDetached('loading the runs', load()));
    return () => {
      alive = false;
      unsubscribe();
      offState();
    };
  }, [projectId, socket]);

  if (!project) return <main class="page">{message ? <p role="alert">{message}</p> : <p>Loading…</p>}</main>;
  const pipeline = pipelines.find((p) => p.name === project.pipeline);
  const running = runs.find((run) => run.status === 'running');
  const queued = runs.filter((run) => run.status === 'pending');
  const active = running ?? queued[queued.length - 1];
  const shown = running ?? runs[0];

  async function start(scope: string) {
    setMessage('');
    try {
      const run = await api<Run>('POST', `/api/projects/${projectId}/runs`, { scope, triggered_by: 'gui', if_busy: 'queue' });
      setRuns((list) => (list.some((r) => r.id === run.id) ? list : [run, ...list]));
    } catch (error) {
      setMessage((error as Error).message);
    }
  }

  async function remove() {
    if (!confirm(`Delete project "${project!.name}" with all its runs and logs?`)) return;
    try {
      await api('DELETE', `/api/projects/${projectId}`);
      location.hash = '#/';
    } catch (error) {
      setMessage((error as Error).message);
    }
  }

  return (
    <main class="page">
      <nav class="breadcrumbs" aria-label="Breadcrumbs"><a href="#/">Projects</a> / {project.name}</nav>
      <div class="page-header">
        <h1>{project.name}</h1>
        <button type="button" onClick={() => setEditing(!editing)}>{editing ? 'Close editor' : 'Edit project'}</button>
        <button type="button" class="danger" onClick={() => runDetached('deleting the project', remove())}>Delete project</button>
      </div>
      <p class="muted">Pipeline <strong>{project.pipeline}</strong> on <code>{project.doc_root}</code></p>
      {editing && <ProjectForm pipelines={pipelines} project={project} onSaved={(p) => { setProject(p); setEditing(false); }} onCancel={() => setEditing(false)} />}
      <section aria-label="Start a run" class="scopes">
        <h2>Run</h2>
        {pipeline?.scopes.map((scope) => (
          <button type="button" class="primary" key={scope.name} onClick={() => runDetached('starting a run', start(scope.name))} title={`Runs from step ${scope.first_step} to the end`}>
            {active ? 'Queue' : 'Run'} {scope.name}
          </button>
        )) ?? <p role="alert">Pipeline {project.pipeline} is not defined on the server.</p>}
        {queued.length > 0 && <span class="queue" data-testid="queue">{queued.length} queued</span>}
        {message && <p role="alert" class="field-error">{message}</p>}
      </section>
      {running && <ActiveRun run={running} />}
      {/* The current (or latest) run's log, live: pressing Run shows it at once. */}
      {shown && (
        <section class="project-log" aria-label={`Log of run ${shown.id}`} data-testid="project-log">
          <LogView key={shown.id} socket={socket} run={shown} />
        </section>
      )}
      <section aria-label="Run history">
        <h2>History</h2>
        <table class="runs">
          <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Scope</th><th scope="col">Triggered by</th><th scope="col">Started</th><th scope="col">Duration</th></tr></thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.id} data-run-id={run.id}>
                <td><a href={`#/projects/${projectId}/runs/${run.id}`}>#{run.id}</a></td>
                <td><StatusBadge status={run.status} />{isActive(run) && run.current_step ? ` · ${run.current_step}` : ''}</td>
                <td>{run.scope}</td>
                <td>{run.triggered_by}</td>
                <td>{formatTime(run.started_at)}</td>
                <td>{runDuration(run)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <ProjectSecrets projectId={projectId} />
    </main>
  );
}
