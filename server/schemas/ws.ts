import { z } from 'zod';
import { MAX_TAIL } from '../logs/pageReader.js';
import { positiveInteger } from './fields.js';
import { logPageSchema, runSchema, runStatus, sectionSchema } from './http.js';

/** The WebSocket messages: what clients send (validated) and what the hub sends (documented). */


const runId = positiveInteger.meta({ 'x-error-code': 'invalid_run_id' });
const projectId = positiveInteger.meta({ 'x-error-code': 'invalid_project_id' });
const offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('a non-negative integer').meta({ 'x-error-code': 'invalid_offset' });
const tail = z.number().int().min(0).max(MAX_TAIL).describe(`an integer from 0 to ${MAX_TAIL}`).meta({ 'x-error-code': 'invalid_tail' });

const structural = (message: string) => ({ code: 'custom' as const, message, params: { code: 'invalid_message' } });

export const messageType = z.enum(['subscribe', 'unsubscribe']).describe('one of subscribe, unsubscribe').meta({ 'x-error-code': 'invalid_type' });

export const subscribeMessage = z.strictObject({
  type: z.literal('subscribe'),
  run_id: runId.optional(),
  project_id: projectId.optional(),
  offset: offset.optional(),
  tail: tail.optional(),
  timestamps: z.boolean().describe('true: each `lines` message carries `times`, when each line was written').meta({ 'x-error-code': 'invalid_timestamps' }).optional(),
  sections: z.boolean().describe('true: `sections` messages as the run\'s sections open, close or unfold').meta({ 'x-error-code': 'invalid_sections' }).optional(),
}).superRefine((message, ctx) => {
  if ((message.run_id === undefined) === (message.project_id === undefined)) ctx.addIssue(structural('A subscribe message needs exactly one of `run_id` and `project_id`'));
  else if (message.project_id !== undefined && (message.offset !== undefined || message.tail !== undefined || message.timestamps !== undefined || message.sections !== undefined)) ctx.addIssue(structural('`offset`, `tail`, `timestamps` and `sections` apply to run subscriptions only'));
  else if (message.offset !== undefined && message.tail !== undefined) ctx.addIssue(structural('Give `offset` or `tail`, not both'));
});

export const unsubscribeMessage = z.strictObject({
  type: z.literal('unsubscribe'),
  run_id: runId.optional(),
  project_id: projectId.optional(),
}).superRefine((message, ctx) => {
  if ((message.run_id === undefined) === (message.project_id === undefined)) ctx.addIssue(structural('An unsubscribe message needs exactly one of `run_id` and `project_id`'));
});

export const clientMessage = z.union([subscribeMessage, unsubscribeMessage]);

// Server → client (documentation: the hub builds these, see server/wire.ts)

const lines = logPageSchema.pick({ lines: true, offset: true, next: true, times: true });
export const serverMessage = z.union([
  z.object({ type: z.literal('subscribed'), run_id: positiveInteger.optional(), project_id: positiveInteger.optional(), offset: z.number().int().optional() }),
  z.object({ type: z.literal('lines'), run_id: positiveInteger, ...lines.shape, continued: z.array(z.number().int()).optional() }),
  z.object({ type: z.literal('run'), run: runSchema }),
  z.object({ type: z.literal('run_removed'), project_id: positiveInteger, run_id: positiveInteger, reason: z.enum(['purged', 'retention']) }),
  z.object({ type: z.literal('complete'), run_id: positiveInteger, status: runStatus, exit_code: z.number().int().nullable(), error_message: z.string().nullable(), next: z.number().int() }),
  z.object({ type: z.literal('sections'), run_id: positiveInteger, sections: z.array(sectionSchema) }).describe('sections opened, closed or unfolded, their state now (with `sections: true`)'),
  z.looseObject({ type: z.literal('error'), code: z.string(), message: z.string(), run_id: positiveInteger.optional(), project_id: positiveInteger.optional() }),
]);
