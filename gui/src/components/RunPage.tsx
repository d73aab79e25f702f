import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type Project, type Run } from '../api';
import type { HubSocket } from '../socket';
import { ActiveRun } from './ActiveRun';
import { LogView } from './LogView';
import { runDetached } from '../report';

/** `?at=OFFSET` in the hash: a permalink to a line. */
function atOffset(): number | undefined {
  const at = /[?&]at=(\d{1,16})(?:&|$)/.exec(location.hash)?.[1];
  return at === undefined ? undefined : Number(at);
}

/** One run: its record (live through `run` messages) and its log. */
export function RunPage({ projectId, runId, socket }: { projectId: number; runId: number; socket: HubSocket }) {
  const [run, setRun] = useState<Run | null>(null);
  const [projectName, setProjectName] = useState(`Project ${projectId}`);
  const [error, setError] = useState('');
  const reload = useRef<() => void>(() => undefined);
  useEffect(() => {
    let alive = true;
    api<Project>('GET', `/api/projects/${projectId}`).then((p) => alive && setProjectName(p.name), () => undefined);
    const load = () => api<Run>('GET', `/api/projects/${projectId}/runs/${runId}`).then((r) => alive && setRun(r), (e: Error) => setError(e.message));
    reload.current = () => runDetached('loading the run', load());
    runDetached('loading the run', load());
    const unsubscribe = socket.subscribeProject(projectId, (changed, removed) => changed.id === runId && (removed ? (setRun(null), setError(`Run #${runId} was removed (purged, or past the project's retention limits)`)) : setRun(changed)));
    const offState = socket.onState((state) => state === 'open' && reload.current());
    return () => {
      alive = false;
      unsubscribe();
      offState();
    };
  }, [projectId, runId, socket]);

  if (!run) return <main class="page">{error ? <p role="alert">{error}</p> : <p>Loading…</p>}</main>;
  return (
    <main class="page run-page">
      <nav class="breadcrumbs" aria-label="Breadcrumbs"><a href="#/">Projects</a> / <a href={`#/projects/${projectId}`}>{projectName}</a> / Run #{run.id}</nav>
      <ActiveRun run={run} showLink={false} />
      <p class="run-tools"><a class="button" href={`/api/projects/${projectId}/runs/${run.id}/logs/raw?download=1`} download>Download log</a></p>
      {/* A view per run: another run's page starts fresh (not in the window, folds or search the last one left). */}
      <LogView key={run.id} socket={socket} run={run} at={atOffset()} onRecord={(changed) => (changed ? setRun(changed) : reload.current())} />
    </main>
  );
}
