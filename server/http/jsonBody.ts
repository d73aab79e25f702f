import type Koa from 'koa';
import { HubError, badRequest } from '../errors.js';
/** A JSON object body, before its schema reads it. */
export type Body = Record<string, unknown>;

export const MAX_BODY_BYTES = 1024 * 1024;

/** Reads a JSON object body: 415 for another type, 413 past 1 MiB, 400 for bad JSON. An empty body is `{}`. */
export async function readJsonBody(ctx: Koa.Context): Promise<Body> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > MAX_BODY_BYTES) throw new HubError(413, 'body_too_large', `The request body is over the limit of ${MAX_BODY_BYTES} bytes`);
  const hasBody = declared > 0 || ctx.get('transfer-encoding') !== '';
  if (hasBody && !ctx.is('application/json')) {
    throw new HubError(415, 'unsupported_media_type', `Expected a JSON body (Content-Type: application/json), got ${JSON.stringify(ctx.get('content-type') || 'none')}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HubError(413, 'body_too_large', `The request body is over the limit of ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badRequest('invalid_json', `The body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('invalid_body', 'Expected the body to be a JSON object');
  return parsed as Body;
}
