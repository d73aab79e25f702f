export type { LogPage, Pipeline, Project, Run, RunStatus } from '../../server/wire';
import type { Run } from '../../server/wire';

/** An error body from the server: a stable code, a message, and the field it is about. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  if (response.status === 401) location.assign('/login'); // HUB_TOKEN is set and we have no cookie
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code ?? 'http_error', error.message ?? `HTTP ${response.status}`, error.field);
  }
  return data as T;
}

export const isActive = (run: Run) => run.status === 'pending' || run.status === 'running';
export const runPath = (run: { project_id: number; id: number }) => `/api/projects/${run.project_id}/runs/${run.id}`;
