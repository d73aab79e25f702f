import type { LineBatch } from '../logs/lineSplitter.js';
import type { CompleteMessage, ErrorMessage, Run, ServerMessageType } from '../wire.js';

export type { CompleteMessage, ErrorMessage, ServerMessageType };

/** A message as sent: JSON text, or its UTF-8 bytes (encoded once, however many sinks get it). */
export type Frame = string | Buffer;

const COMMA = Buffer.from(',');

/**
 * Serialises a batch once; every subscriber at the live edge gets the same bytes. A batch split
 * with output 'json' is already JSON (see jsonLines.ts) and is only framed; either way the bytes
 * are those of JSON.stringify({type, run_id, offset, next, lines, continued?, times?}). `withTimes`:
 * the frame for subscribers that asked for the lines' times (the batch carries them).
 */
export function linesFrame(runId: number, batch: LineBatch, withTimes = false): Buffer {
  // Asked for and unknown (a log without time records): null for each line.
  const times = withTimes ? (batch.times ?? new Array<null>(batch.json?.count ?? batch.lines.length).fill(null)) : null;
  if (!batch.json) {
    const message: Record<string, unknown> = { type: 'lines', run_id: runId, offset: batch.offset, next: batch.next, lines: batch.lines };
    if (batch.continued.length > 0) message.continued = batch.continued;
    if (times) message.times = times;
    return Buffer.from(JSON.stringify(message));
  }
  const head = `{"type":"lines","run_id":${runId},"offset":${batch.offset},"next":${batch.next},"lines":[`;
  const continued = batch.continued.length > 0 ? `,"continued":[${batch.continued.join(',')}]` : '';
  const tail = `]${continued}${times ? `,"times":${JSON.stringify(times)}` : ''}}`;
  const pieces: Buffer[] = [Buffer.from(head)];
  batch.json.parts.forEach((part, index) => {
    if (index > 0) pieces.push(COMMA);
    pieces.push(part);
  });
  pieces.push(Buffer.from(tail));
  return Buffer.concat(pieces);
}

export const runFrame = (run: Run) => JSON.stringify({ type: 'run', run });

/** Where log messages go: a WebSocket connection or an SSE response. */
export interface LogSink {
  readonly closed: boolean;
  /** `frame` is the JSON of the message, shared between sinks. */
  send(type: ServerMessageType, frame: Frame, next?: number): void;
  /** Over its buffer threshold: the subscriber pauses and later catches up from the file. */
  congested(): boolean;
  /** Resolves once the buffer is back under its threshold (or the sink closed). */
  drained(): Promise<void>;
  /** Ends a sink the hub owns the end of (an SSE response) when the server shuts down. */
  end?(): void;
  /** The hub ended one of its run subscriptions (`complete`, `log_reset` or `run_removed` was sent). */
  subscriptionEnded?(runId: number): void;
}
