import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { formatTime } from '../format';
import { runDetached } from '../report';

interface SecretName {
  name: string;
  updated_at: string;
}

/**
 * A project's secrets: names and when each was set, a form to set one, and delete buttons. Values
 * go to the server and are never shown: the server gives none back, and the field is cleared once set.
 */
export function ProjectSecrets({ projectId }: { projectId: number }) {
  const [secrets, setSecrets] = useState<SecretName[]>([]);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);

  const load = () => api<SecretName[]>('GET', `/api/projects/${projectId}/secrets`).then(setSecrets);
  useEffect(() => runDetached('loading the secrets', load()), [projectId]);

  async function save(event: Event) {
    event.preventDefault();
    setBusy(true);
    setMessage('');
    try {
      await api('PUT', `/api/projects/${projectId}/secrets/${encodeURIComponent(name.trim())}`, { value });
      setName('');
      setValue('');
      await load();
    } catch (error) {
      setMessage((error as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function remove(secret: string) {
    if (!confirm(`Delete secret ${secret}? Runs started from now on will not get it.`)) return;
    try {
      await api('DELETE', `/api/projects/${projectId}/secrets/${encodeURIComponent(secret)}`);
      await load();
    } catch (error) {
      setMessage((error as Error).message);
    }
  }

  return (
    <section aria-label="Secrets" class="secrets">
      <h2>Secrets</h2>
      <p class="muted">Steps get each as an environment variable of its name; the log shows [MASKED] wherever one is printed. Values cannot be read back.</p>
      {secrets.length > 0 && (
        <table class="runs">
          <thead><tr><th scope="col">Name</th><th scope="col">Set</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {secrets.map((secret) => (
              <tr key={secret.name} data-secret={secret.name}>
                <td><code>{secret.name}</code></td>
                <td>{formatTime(secret.updated_at)}</td>
                <td><button type="button" class="danger" onClick={() => runDetached('deleting a secret', remove(secret.name))} aria-label={`Delete secret ${secret.name}`}>Delete</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="setting-row" onSubmit={(event) => runDetached('setting a secret', save(event))} aria-label="Set a secret">
        <input aria-label="Secret name" placeholder="API_KEY" value={name} pattern="[A-Z_][A-Z0-9_]*" onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
        <input aria-label="Secret value" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} required />
        <button type="submit" disabled={busy}>Set secret</button>
      </form>
      {message && <p role="alert" class="field-error">{message}</p>}
    </section>
  );
}
