/**
 * What crosses the wire, written once: the shapes of the HTTP bodies and of the messages over
 * WebSocket and SSE. Types only, so the GUI (`gui/src`) imports it too without pulling in server code.
 */

export type RunStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface Project {
  id: number;
  name: string;
  doc_root: string;
  pipeline: string;
  settings: Record<string, string>;
  /** the project's own limits; a missing key takes the hub's default, null means no limit */
  retention: Retention;
  created_at: string;
}

/** How many finished runs a project keeps: at most `runs`, none older than `days`, at most `log_bytes` of logs. */
export interface Retention {
  runs?: number | null;
  days?: number | null;
  log_bytes?: number | null;
}

/** A run as the API shows it. */
export interface Run {
  id: number;
  project_id: number;
  scope: string;
  status: RunStatus;
  triggered_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  signal: string | null;
  error_message: string | null;
  current_step: string | null;
  progress_current: number;
  progress_total: number;
  /** bytes; live while the run is active */
  log_size: number;
  /** relative to the logs folder */
  log_path: string;
  /** every step the run carries out, in order; not reached yet: `pending` */
  steps: Step[];
}

/** A step of a run: its outcome, and its part of the log as byte offsets [log_start, log_end). */
export interface Step {
  name: string;
  status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  signal: string | null;
  /** where its header line starts (null until it starts) */
  log_start: number | null;
  /** where its output ends (null while it runs) */
  log_end: number | null;
}

export type SectionDialect = 'github' | 'gitlab' | 'buildkite';

/**
 * A section a step's own output marks (GitHub `::group::`, GitLab `section_start`, Buildkite
 * `---`/`+++`/`~~~`), as the hub indexes it: its part of the log as byte offsets [start, end).
 */
export interface Section {
  /** 1, 2, … in the order they open within the run */
  id: number;
  /** the section it is nested in (null: directly under its step) */
  parent: number | null;
  depth: number;
  /** the step it is in (null: before the first step header) */
  step: string | null;
  name: string;
  dialect: SectionDialect;
  /** GitLab's section name, which its `section_end` names (null for the others) */
  key: string | null;
  /** where its marker line starts */
  start: number;
  /** where its marker line ends: its content starts there */
  header_end: number;
  /** where it ends (null while open): after its end marker's line, or where its step or run ended */
  end: number | null;
  /** Unix ms, from the log's line times (GitLab's marker time when there are none) */
  started_at: number | null;
  ended_at: number | null;
  /** folded until opened, as its marker asks */
  collapsed: boolean;
  /** Buildkite's `~~~`: shown de-emphasised */
  muted: boolean;
}

/** `GET …/sections` (with `run_id`) */
export interface SectionPage {
  sections: Section[];
  /** the `after` of the next page (the last id here, or `after` when none) */
  next: number;
  /** bytes of the log indexed so far */
  indexed: number;
  /** the run has ended and its whole log is indexed: no section changes any more */
  complete: boolean;
}

export interface Pipeline {
  name: string;
  steps: { name: string; timeout_s: number | null }[];
  scopes: { name: string; first_step: string }[];
}

export const WEBHOOK_EVENTS = ['run.started', 'run.completed', 'run.failed', 'run.cancelled'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A webhook as the API shows it (its secret never leaves the hub). */
export interface Webhook {
  id: number;
  project_id: number;
  url: string;
  events: WebhookEvent[];
  created_at: string;
}

/** One event for one webhook: tried until a 2xx answer or the last try. */
export interface WebhookDelivery {
  id: number;
  webhook_id: number;
  run_id: number;
  event: WebhookEvent;
  status: 'pending' | 'delivered' | 'failed';
  tries: number;
  /** the HTTP status of the last try (null: no answer) */
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string;
  created_at: string;
  updated_at: string;
}

/** What a webhook receives (POST, JSON, signed in `X-Hub-Signature-256`). */
export interface WebhookPayload {
  event: WebhookEvent;
  project: { id: number; name: string };
  run: Run;
  /** the run's page in the GUI */
  url: string;
}

/** `GET /api/ready`: each part the hub needs (embedded: database, logs; cluster: database, redis, listen, archive), checked now. */
export interface ReadyReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; ms: number; error?: string }>;
}

/** `GET …/logs` */
export interface LogPage {
  lines: string[];
  continued: number[];
  /** with `?timestamps=1`: when each line was written (Unix ms; null when unknown) */
  times?: (number | null)[];
  offset: number;
  next: number;
  complete: boolean;
}

export interface ErrorBody {
  code: string;
  message: string;
  field?: string;
  [detail: string]: unknown;
}

/** Where a subscription starts: a byte offset (a `next` a message gave), or the last N lines. */
export type StartAt = { offset: number } | { tail: number };

// Client → server

export type ClientMessage =
  | { type: 'subscribe'; run_id: number; offset?: number; tail?: number; timestamps?: boolean; sections?: boolean }
  | { type: 'subscribe'; project_id: number }
  | { type: 'unsubscribe'; run_id: number }
  | { type: 'unsubscribe'; project_id: number };

// Server → client

export interface SubscribedMessage { type: 'subscribed'; run_id?: number; project_id?: number; offset?: number }
/** `times`: for a subscription with `timestamps: true`, when each line was written (Unix ms; null when unknown) */
export interface LinesMessage { type: 'lines'; run_id: number; offset: number; next: number; lines: string[]; continued?: number[]; times?: (number | null)[] }
export interface RunMessage { type: 'run'; run: Run }
/** A finished run was deleted: by a user (`purged`) or by the retention limits (`retention`). To its project's subscribers and its own (once per connection); it ends a run subscription. */
export interface RunRemovedMessage { type: 'run_removed'; project_id: number; run_id: number; reason: RemovalReason }
export type RemovalReason = 'purged' | 'retention';
export interface CompleteMessage { type: 'complete'; run_id: number; status: RunStatus; exit_code: number | null; error_message: string | null; next: number }
/** Sections a read of the log opened, closed or unfolded (`^^^ +++`), their state now: to run subscribers that asked (`sections: true`). */
export interface SectionsMessage { type: 'sections'; run_id: number; sections: Section[] }
export interface ErrorMessage extends ErrorBody { type: 'error'; run_id?: number; project_id?: number }
export type ServerMessage = SubscribedMessage | LinesMessage | RunMessage | RunRemovedMessage | CompleteMessage | SectionsMessage | ErrorMessage;
export type ServerMessageType = ServerMessage['type'];
