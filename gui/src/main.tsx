import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type Pipeline } from './api';
import { HubSocket, type ConnectionState } from './socket';
import { ProjectList } from './components/ProjectList';
import { ProjectPage } from './components/ProjectPage';
import { RunPage } from './components/RunPage';
import { applyTheme, followSystemTheme, savedTheme, type ThemeChoice } from './theme';
import { runDetached } from './report';

applyTheme(savedTheme());

const socket = new HubSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

const STATE_TEXT: Record<ConnectionState, string> = { connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…' };

function App() {
  const hash = useHash();
  const [pipelines, setPipelines] = useState<Pipeline[]>([]);
  const [state, setState] = useState<ConnectionState>(socket.state);
  useEffect(() => {
    const off = socket.onState(setState);
    setState(socket.state); // it may have connected before this effect ran
    return off;
  }, []);
  useEffect(() => runDetached('loading the pipelines', api<Pipeline[]>('GET', '/api/pipelines').then(setPipelines)), []);
  const [theme, setTheme] = useState<ThemeChoice>(savedTheme());
  useEffect(() => followSystemTheme(), []);

  const run = /^#\/projects\/(\d+)\/runs\/(\d+)/.exec(hash);
  const project = /^#\/projects\/(\d+)/.exec(hash);
  let page;
  if (run) page = <RunPage key={hash} projectId={Number(run[1])} runId={Number(run[2])} socket={socket} />;
  else if (project) page = <ProjectPage key={hash} projectId={Number(project[1])} pipelines={pipelines} socket={socket} />;
  else page = <ProjectList pipelines={pipelines} />;

  return (
    <>
      <header class="top-bar">
        <a href="#/" class="brand">Run hub</a>
        <label class="theme-picker">
          Theme{' '}
          <select value={theme} onChange={(e) => { const choice = (e.target as HTMLSelectElement).value as ThemeChoice; setTheme(choice); applyTheme(choice); }}>
            <option value="system">System</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </label>
        <span class={`connection connection-${state}`} role="status" data-testid="connection">
          <span aria-hidden="true">●</span> {STATE_TEXT[state]}
        </span>
      </header>
      {page}
    </>
  );
}

render(<App />, document.getElementById('app')!);
