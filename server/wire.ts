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
}

export interface Pipeline {
  name: string;
  steps: { name: string; timeout_s: number | null }[];
  scopes: { name: string; first_step: string }[];
}

/** `GET …/logs` */
export interface LogPage {
  lines: string[];
  continued: number[];
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
  | { type: 'subscribe'; run_id: number; offset?: number; tail?: number }
  | { type: 'subscribe'; project_id: number }
  | { type: 'unsubscribe'; run_id: number }
  | { type: 'unsubscribe'; project_id: number };

// Server → client

export interface SubscribedMessage { type: 'subscribed'; run_id?: number; project_id?: number; offset?: number }
export interface LinesMessage { type: 'lines'; run_id: number; offset: number; next: number; lines: string[]; continued?: number[] }
export interface RunMessage { type: 'run'; run: Run }
/** A finished run was deleted: by a user (`purged`) or by the retention limits (`retention`). */
export interface RunRemovedMessage { type: 'run_removed'; project_id: number; run_id: number; reason: RemovalReason }
export type RemovalReason = 'purged' | 'retention';
export interface CompleteMessage { type: 'complete'; run_id: number; status: RunStatus; exit_code: number | null; error_message: string | null; next: number }
export interface ErrorMessage extends ErrorBody { type: 'error'; run_id?: number; project_id?: number }
export type ServerMessage = SubscribedMessage | LinesMessage | RunMessage | RunRemovedMessage | CompleteMessage | ErrorMessage;
export type ServerMessageType = ServerMessage['type'];
