import { describeValue, protocolError } from '../errors.js';
import { DEFAULT_TAIL, MAX_TAIL, type StartAt } from '../logs/pageReader.js';

/** Messages a client sends over the WebSocket. */
export const CLIENT_MESSAGE_TYPES = ['subscribe', 'unsubscribe'] as const;
export type ClientMessage =
  | { type: 'subscribe'; runId: number; startAt: StartAt }
  | { type: 'subscribe'; projectId: number }
  | { type: 'unsubscribe'; runId: number }
  | { type: 'unsubscribe'; projectId: number };

export { DEFAULT_TAIL, MAX_TAIL };


const isId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
const isCount = (value: unknown, max = Number.MAX_SAFE_INTEGER): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max;

/** Parses one text frame; anything malformed is a HubError (400) with a stable code. */
export function parseClientMessage(text: string): ClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw protocolError('invalid_json', 'The message is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw protocolError('invalid_message', 'Expected a JSON object');
  const message = raw as Record<string, unknown>;
  const runId = isId(message.run_id) ? message.run_id : undefined;
  const projectId = isId(message.project_id) ? message.project_id : undefined;
  const fail = (code: string, text: string): never => {
    throw protocolError(code, text, { run_id: runId, project_id: projectId });
  };
  if (!CLIENT_MESSAGE_TYPES.includes(message.type as never)) {
    fail('invalid_type', `Expected \`type\` to be one of ${CLIENT_MESSAGE_TYPES.join(', ')}, got ${describeValue(message.type)}`);
  }
  const type = message.type as ClientMessage['type'];
  const allowed = type === 'subscribe' ? ['type', 'run_id', 'project_id', 'offset', 'tail'] : ['type', 'run_id', 'project_id'];
  const unknown = Object.keys(message).find((key) => !allowed.includes(key));
  if (unknown !== undefined) fail('unknown_field', `Unknown field \`${unknown.slice(0, 64)}\` in a ${type} message; allowed: ${allowed.join(', ')}`);
  const hasRun = message.run_id !== undefined;
  const hasProject = message.project_id !== undefined;
  if (hasRun === hasProject) fail('invalid_message', `A ${type} message needs exactly one of \`run_id\` and \`project_id\``);
  if (hasRun && runId === undefined) fail('invalid_run_id', `Expected \`run_id\` to be a positive integer, got ${describeValue(message.run_id)}`);
  if (hasProject && projectId === undefined) fail('invalid_project_id', `Expected \`project_id\` to be a positive integer, got ${describeValue(message.project_id)}`);
  if (projectId !== undefined) {
    if (message.offset !== undefined || message.tail !== undefined) fail('invalid_message', '`offset` and `tail` apply to run subscriptions only');
    return type === 'subscribe' ? { type, projectId } : { type, projectId };
  }
  if (type === 'unsubscribe') return { type, runId: runId! };
  if (message.offset !== undefined && message.tail !== undefined) fail('invalid_message', 'Give `offset` or `tail`, not both');
  if (message.offset !== undefined) {
    if (!isCount(message.offset)) fail('invalid_offset', `Expected \`offset\` to be a non-negative integer, got ${describeValue(message.offset)}`);
    return { type, runId: runId!, startAt: { offset: message.offset as number } };
  }
  if (message.tail !== undefined && !isCount(message.tail, MAX_TAIL)) {
    fail('invalid_tail', `Expected \`tail\` to be an integer from 0 to ${MAX_TAIL}, got ${describeValue(message.tail)}`);
  }
  return { type, runId: runId!, startAt: { tail: (message.tail as number | undefined) ?? DEFAULT_TAIL } };
}
