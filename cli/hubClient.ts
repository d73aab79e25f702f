import type { ErrorBody, Pipeline, Project, Run } from '../server/wire.js';

/** A refusal or failure the user should read: the hub's error message, or why the hub was not reached. */
export class CliError extends Error {
  constructor(message: string, readonly code = 'error', readonly status?: number) {
    super(message);
  }
}

/** The hub's HTTP API, as the CLI uses it: JSON in and out, the token as a bearer header. */
export class HubClient {
  readonly baseUrl: string;

  constructor(url: string, readonly token: string | undefined) {
    this.baseUrl = url.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token && { authorization: `Bearer ${this.token}` }), ...extra };
  }

  /** fetch with the token; a hub that cannot be reached is a CliError naming the address */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`${this.baseUrl}${path}`, { ...init, headers: this.headers(init.headers as Record<string, string> | undefined) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the hub at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, 'unreachable');
    }
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.fetch(path, {
      method,
      ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.text();
    if (!response.ok) {
      let error: ErrorBody | undefined;
      try {
        error = (JSON.parse(text) as { error?: ErrorBody }).error;
      } catch {
        // not the hub's JSON error body: report the status
      }
      throw new CliError(error?.message ?? `${method} ${path}: HTTP ${response.status}`, error?.code ?? 'http_error', response.status);
    }
    return (text === '' ? null : JSON.parse(text)) as T;
  }

  projects = () => this.json<Project[]>('GET', '/api/projects');
  pipelines = () => this.json<Pipeline[]>('GET', '/api/pipelines');
  run = (runId: number) => this.json<Run>('GET', `/api/runs/${runId}`);
  currentRun = (projectId: number) => this.json<Run | null>('GET', `/api/projects/${projectId}/runs/current`);
  runsOf = (projectId: number, limit: number) => this.json<Run[]>('GET', `/api/projects/${projectId}/runs?limit=${limit}`);

  /** A project by id or by name (a name made of digits is tried as an id first). */
  async project(idOrName: string): Promise<Project> {
    if (/^\d+$/.test(idOrName)) {
      try {
        return await this.json<Project>('GET', `/api/projects/${idOrName}`);
      } catch (error) {
        if (!(error instanceof CliError) || error.status !== 404) throw error;
      }
    }
    const found = (await this.projects()).find((project) => project.name === idOrName);
    if (!found) throw new CliError(`no project with the id or name ${JSON.stringify(idOrName)}`, 'not_found', 404);
    return found;
  }
}
