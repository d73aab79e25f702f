import type { ErrorBody } from './wire.js';

/** The one error type the hub throws on purpose: a stable code, an HTTP status, and whether the message may be shown. */
export class HubError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly details?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(status: number, code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown>; headers?: Record<string, string> } = {}) {
    super(message, { cause: options.cause });
    this.name = 'HubError';
    this.status = status;
    this.code = code;
    this.expose = status < 500 || status === 503 || status === 507;
    this.details = options.details;
    this.headers = options.headers;
  }
}

/** A bad client message over WebSocket: 400, with the run or project it was about, if known. */
export const protocolError = (code: string, message: string, ids: { run_id?: number; project_id?: number } = {}) =>
  new HubError(400, code, message, { details: { ...ids } });

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new HubError(400, code, message, { details });
export const notFound = (what: string, id: unknown) =>
  new HubError(404, 'not_found', `${what} ${JSON.stringify(id)} does not exist`);
export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new HubError(409, code, message, { details });

/** Renders a value for an error message: short, and unambiguous about its type. */
export function describeValue(value: unknown): string {
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // A BigInt or a cycle; or nesting too deep for either walk (a body of 500 000 `[`), which
    // String() overflows the stack on too: then only its type is said.
    try {
      text = String(value);
    } catch {
      text = type === 'array' ? '[...]' : '{...}';
    }
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return `${text} (${type})`;
}

/**
 * SQLite locked; PostgreSQL unreachable, starting, out of connections, a conflict worth retrying, a
 * statement past its deadline (57014), or the connection terminated under it (57P01, a failover).
 */
const DATABASE_BUSY = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'ECONNREFUSED', '57P03', '53300', '40001', '40P01', '55P03', '57014', '57P01']);
/** node-postgres's own deadlines: taking a connection from the pool, and a statement's answer. */
const DATABASE_TIMEOUTS = new Set(['timeout exceeded when trying to connect', 'Query read timeout', 'Connection terminated due to connection timeout']);

/** The disk under the database is full (SQLite; PostgreSQL's disk_full), or under a file being written. */
const STORAGE_FULL = new Set(['SQLITE_FULL', '53100', 'ENOSPC', 'EDQUOT']);

/** The process is out of file descriptors (or the system is): a moment later some are free again. */
const OUT_OF_FILES = new Set(['EMFILE', 'ENFILE']);

/**
 * A finished run's log that its store does not hold (cluster mode: Redis lost it before it was
 * archived, or a copy is still on its way): answering "complete" at the bytes there are would hand
 * readers a short log as if whole, so they are told to come back instead.
 */
export function logUnavailable(runId: number, recordedSize: number, found: number): HubError {
  return new HubError(503, 'log_unavailable', `The log of run ${runId} (${recordedSize} bytes) is not readable just now: its store has ${found} of them (it lost the rest before the log was archived, or they are on their way back); try again shortly`, { details: { run_id: runId } });
}

/**
 * Redis (or a Redis Cluster) not answering just now: a command past its deadline, reconnects used
 * up, a connection closed under pending commands, or a cluster between masters (a failover: no
 * master for a slot yet, keys moving, a replica promoted, a node still loading). All pass: 503.
 */
const REDIS_UNAVAILABLE_REPLIES = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY)\b|^Too many Cluster redirections|^Connection is closed|^Failed to refresh slots cache/;
const REDIS_UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

function isRedisUnavailable(error: { message?: string; name?: string }): boolean {
  return error.message === 'Command timed out' || REDIS_UNAVAILABLE_NAMES.has(error.name ?? '') || REDIS_UNAVAILABLE_REPLIES.test(error.message ?? '');
}

/**
 * Anything thrown, as a HubError: ours as they are, a busy database or no file descriptor free as 503, a full disk as 507,
 * Koa's 4xx as such, the rest 500.
 */
export function toHubError(caught: unknown): HubError {
  if (caught instanceof HubError) return caught;
  const error = caught as { status?: number; message?: string; code?: string } | null;
  if (error && ((typeof error.code === 'string' && DATABASE_BUSY.has(error.code)) || DATABASE_TIMEOUTS.has(error.message ?? ''))) {
    return new HubError(503, 'database_busy', 'The database is busy; try again shortly', { cause: caught });
  }
  if (error && typeof error.code === 'string' && OUT_OF_FILES.has(error.code)) {
    return new HubError(503, 'server_busy', 'The server has no file descriptor free just now; try again shortly', { cause: caught });
  }
  if (error && isRedisUnavailable(error)) {
    return new HubError(503, 'log_store_unavailable', 'The log store (Redis) did not answer in time; try again shortly', { cause: caught });
  }
  if (error && typeof error.code === 'string' && STORAGE_FULL.has(error.code)) {
    return new HubError(507, 'storage_full', "The server's disk is full: the write was refused. Reads go on; try again once space is freed", { cause: caught });
  }
  if (error && typeof error.status === 'number' && error.status >= 400 && error.status < 500) {
    const code = error.status === 405 ? 'method_not_allowed' : error.status === 404 ? 'not_found' : 'bad_request';
    return new HubError(error.status, code, error.message ?? 'Bad request', { cause: caught });
  }
  return new HubError(500, 'internal', (error && error.message) || 'Internal server error', { cause: caught });
}

export type { ErrorBody };

/**
 * The one shape of an error for every client: HTTP's `{"error": body}`, SSE's and WebSocket's
 * `{"type": "error", ...body}`. An unexpected error's message is not shown.
 */
export function errorBody(error: HubError): ErrorBody {
  return { code: error.code, message: error.expose ? error.message : 'Internal server error', ...error.details };
}

/**
 * A worker's write about a run was refused under its lease (cluster mode): another epoch holds the
 * run, a hub gave it up, or the lease expired. The worker stops the run and records nothing more.
 */
export class LeaseLostError extends HubError {
  constructor(runId: number, message = `The lease on run ${runId} is lost`) {
    super(409, 'lease_lost', message, { details: { run_id: runId } });
    this.name = 'LeaseLostError';
  }
}
