import fs from 'node:fs';

/** Bad HTTP requests and their documented answers; the soak sends them too. */
export type Case = [method: string, path: string, body: unknown, status: number, code: string, field?: string, headers?: Record<string, string>];
const P = '/api/projects';
const tmp = fs.realpathSync('/tmp');
export const cases: Case[] = [
  ['POST', P, 'not json', 400, 'invalid_json'],
  ['POST', P, '[1,2]', 400, 'invalid_body'],
  ['POST', P, { doc_root: tmp, pipeline: 'p' }, 400, 'missing_field', 'name'],
  ['POST', P, { name: 42, doc_root: tmp, pipeline: 'p' }, 400, 'invalid_field', 'name'],
  ['POST', P, { name: 'x\u0000y', doc_root: tmp, pipeline: 'p' }, 400, 'invalid_field', 'name'],
  ['POST', P, { name: '\ud800', doc_root: tmp, pipeline: 'p' }, 400, 'invalid_field', 'name'],
  ['POST', P, { name: 'x', doc_root: 'relative/dir', pipeline: 'p' }, 400, 'invalid_field', 'doc_root'],
  ['POST', P, { name: 'x', doc_root: '/does/not/exist', pipeline: 'p' }, 400, 'invalid_field', 'doc_root'],
  ['POST', P, { name: 'x', doc_root: '/etc/passwd', pipeline: 'p' }, 400, 'invalid_field', 'doc_root'],
  ['POST', P, { name: 'x', doc_root: tmp, pipeline: 'nope' }, 400, 'invalid_field', 'pipeline'],
  ['POST', P, { name: 'x', doc_root: tmp, pipeline: 'p', settings: [] }, 400, 'invalid_field', 'settings'],
  ['POST', P, { name: 'x', doc_root: tmp, pipeline: 'p', settings: { 'A=B;rm': 'v' } }, 400, 'invalid_field'],
  ['POST', P, { name: 'x', doc_root: tmp, pipeline: 'p', settings: { k: 1 } }, 400, 'invalid_field', 'settings.k'],
  ['POST', P, { name: 'x', doc_root: tmp, pipeline: 'p', command: ['rm'] }, 400, 'unknown_field', 'command'],
  ['POST', P, { name: 'taken', doc_root: tmp, pipeline: 'p' }, 409, 'name_taken', 'name'],
  ['POST', P, { name: 'x', doc_root: tmp, pipeline: 'p' }, 415, 'unsupported_media_type', undefined, { 'content-type': 'text/plain' }],
  ['POST', P, `{"name":"${'x'.repeat(1024 * 1024 + 10)}"}`, 413, 'body_too_large'],
  ['GET', `${P}/abc`, undefined, 400, 'invalid_id', 'projectId'],
  ['GET', `${P}/-1`, undefined, 400, 'invalid_id', 'projectId'],
  ['GET', `${P}/1.5`, undefined, 400, 'invalid_id', 'projectId'],
  ['GET', `${P}/99999999999999999999`, undefined, 400, 'invalid_id', 'projectId'],
  ['GET', `${P}/999`, undefined, 404, 'not_found'],
  ['PATCH', `${P}/999`, { name: 'y' }, 404, 'not_found'],
  ['GET', '/api/nothing', undefined, 404, 'not_found'],
  ['GET', '/api/runs/abc', undefined, 400, 'invalid_id', 'runId'],
  ['GET', '/api/runs/424242', undefined, 404, 'not_found'],
  ['PUT', P, {}, 405, 'method_not_allowed'],
];
export const projectCases = (projectId: number, runId: number): Case[] => [
  ['POST', `${P}/${projectId}/runs`, {}, 400, 'missing_field', 'scope'],
  ['POST', `${P}/${projectId}/runs`, { scope: 'nope' }, 400, 'invalid_scope', 'scope'],
  ['POST', `${P}/${projectId}/runs`, { from_step: 'nope' }, 400, 'invalid_step', 'from_step'],
  ['POST', `${P}/${projectId}/runs`, { from_step: 7 }, 400, 'invalid_field', 'from_step'],
  ['POST', `${P}/${projectId}/runs`, { scope: 'all', from_step: 'x' }, 400, 'invalid_field', 'from_step'],
  ['GET', `${P}/${projectId}/runs/${runId}/logs/raw?download=maybe`, undefined, 400, 'invalid_query', 'download'],
  ['POST', `${P}/${projectId}/runs`, { scope: 'all', if_busy: 'wait' }, 400, 'invalid_field', 'if_busy'],
  ['POST', `${P}/${projectId}/runs`, { scope: 'all', command: 'x' }, 400, 'unknown_field', 'command'],
  ['POST', `${P}/${projectId}/runs`, { scope: ['all'] }, 400, 'invalid_field', 'scope'],
  ['GET', `${P}/${projectId}/runs?limit=-1`, undefined, 400, 'invalid_query', 'limit'],
  ['GET', `${P}/${projectId}/runs?limit=abc`, undefined, 400, 'invalid_query', 'limit'],
  ['GET', `${P}/${projectId}/runs?before=0`, undefined, 400, 'invalid_id', 'before'],
  ['GET', `${P}/${projectId}/runs/0`, undefined, 400, 'invalid_id', 'runId'],
  ['GET', `${P}/${projectId}/runs/12345`, undefined, 404, 'not_found'],
  ['DELETE', `${P}/${projectId}/runs/${runId}`, undefined, 409, 'run_finished'],
  ['DELETE', `${P}/${projectId}/runs/${runId}?purge=yes`, undefined, 400, 'invalid_query', 'purge'],
  ['PATCH', `${P}/${projectId}`, { doc_root: '/nope' }, 400, 'invalid_field', 'doc_root'],
  ['PATCH', `${P}/${projectId}`, { retention: { runs: 0 } }, 400, 'invalid_field', 'retention.runs'],
  ['PATCH', `${P}/${projectId}`, { retention: { days: 1.5 } }, 400, 'invalid_field', 'retention.days'],
  ['PATCH', `${P}/${projectId}`, { retention: { keep: 3 } }, 400, 'unknown_field', 'retention.keep'],
  ['PATCH', `${P}/${projectId}`, { retention: [1] }, 400, 'invalid_field', 'retention'],
  // Nested past what JSON.stringify (and String) can walk: the message must still be rendered.
  ['PATCH', `${P}/${projectId}`, `{"settings":${'['.repeat(500_000)}${']'.repeat(500_000)}}`, 400, 'invalid_field', 'settings'],
];

