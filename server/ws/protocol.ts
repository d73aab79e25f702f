import { z } from 'zod';
import { HubError, protocolError } from '../errors.js';
import { messageType, subscribeMessage, unsubscribeMessage } from '../schemas/ws.js';
import { parseWith } from '../schemas/parse.js';
import { DEFAULT_TAIL, MAX_TAIL, type StartAt } from '../logs/pageReader.js';

/** Messages a client sends over the WebSocket. */
export const CLIENT_MESSAGE_TYPES = ['subscribe', 'unsubscribe'] as const;
export type ClientMessage =
  | { type: 'subscribe'; runId: number; startAt: StartAt; timestamps: boolean; sections: boolean }
  | { type: 'subscribe'; projectId: number }
  | { type: 'unsubscribe'; runId: number }
  | { type: 'unsubscribe'; projectId: number };

export { DEFAULT_TAIL, MAX_TAIL };


const isId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

/** Parses one text frame with the message schemas; anything malformed is a HubError (400) with a stable code. */
export function parseClientMessage(text: string): ClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw protocolError('invalid_json', 'The message is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw protocolError('invalid_message', 'Expected a JSON object');
  const message = raw as Record<string, unknown>;
  // Errors name the run or project the message was about, when it says a valid one.
  const ids = { run_id: isId(message.run_id) ? message.run_id : undefined, project_id: isId(message.project_id) ? message.project_id : undefined };
  try {
    const type = parseWith(z.object({ type: messageType }), message, 'body').type;
    const parsed = parseWith(type === 'subscribe' ? subscribeMessage : unsubscribeMessage, message, 'body');
    if (parsed.project_id !== undefined) return parsed.type === 'subscribe' ? { type: 'subscribe', projectId: parsed.project_id } : { type: 'unsubscribe', projectId: parsed.project_id };
    if (parsed.type === 'unsubscribe') return { type: 'unsubscribe', runId: parsed.run_id! };
    const startAt: StartAt = parsed.offset !== undefined ? { offset: parsed.offset } : { tail: parsed.tail ?? DEFAULT_TAIL };
    return { type: 'subscribe', runId: parsed.run_id!, startAt, timestamps: parsed.timestamps === true, sections: parsed.sections === true };
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
    // A missing `type` is an invalid one, as before schemas.
    const code = error.code === 'missing_field' && error.details?.field === 'type' ? 'invalid_type' : error.code;
    throw protocolError(code, error.message, ids);
  }
}
