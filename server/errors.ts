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
    this.expose = status < 500 || status === 503;
    this.details = options.details;
    this.headers = options.headers;
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new HubError(400, code, message, { details });
export const notFound = (what: string, id: unknown) =>
  new HubError(404, 'not_found', `${what} ${JSON.stringify(id)} does not exist`);
export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new HubError(409, code, message, { details });

/** Renders a value for an error message: short, and unambiguous about its type. */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return `${text} (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}
