import { Ajv2020 } from 'ajv/dist/2020.js';
import { openApiDocument } from '../../server/schemas/openapi.js';

type Json = Record<string, any>;

/**
 * Holds every response the suite receives through the test helpers against the OpenAPI document
 * (the one the server serves): the status must be documented for the route and method, and a JSON
 * body must match its schema. A mismatch throws, so the test that got it fails.
 */
const document = openApiDocument() as Json;
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: false });
ajv.addSchema({ ...document, $id: 'openapi' });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  params: (template.match(/\{/g) ?? []).length,
}));

/** The documented path a request path falls under: the literal one first (`runs/current` before `runs/{runId}`). */
export function templateOf(pathname: string): string | undefined {
  return templates.filter((t) => t.pattern.test(pathname)).sort((a, b) => a.params - b.params)[0]?.template;
}

const pointer = (...parts: string[]) => parts.map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

function validatorFor(path: string): ReturnType<typeof ajv.compile> {
  let validate = validators.get(path);
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi#/${path}` });
    validators.set(path, validate);
  }
  return validate;
}

export function checkResponse(method: string, url: string, status: number, contentType: string | null, body: unknown): void {
  const pathname = new URL(url).pathname;
  const where = `${method} ${pathname} → ${status}`;
  const template = templateOf(pathname);
  const operation = template && document.paths[template][method.toLowerCase()];
  const isJson = (contentType ?? '').startsWith('application/json');
  if (!operation) {
    // An unknown route or method is answered by the error middleware: its body must be an error body.
    if (status < 400) throw new Error(`OpenAPI: ${where} is not in the document`);
    if (isJson && !validatorFor(pointer('components', 'schemas', 'Error'))(body)) throw new Error(`OpenAPI: ${where}: not an error body: ${JSON.stringify(body).slice(0, 300)}`);
    return;
  }
  const key = operation.responses[String(status)] ? String(status) : operation.responses.default ? 'default' : null;
  if (key === null) throw new Error(`OpenAPI: ${where} is not a documented response (documented: ${Object.keys(operation.responses).join(', ')}): ${JSON.stringify(body).slice(0, 300)}`);
  if (!isJson) return;
  const content = operation.responses[key].content?.['application/json'];
  if (!content) throw new Error(`OpenAPI: ${where} answered JSON, which the document does not list`);
  const validate = validatorFor(pointer('paths', template!, method.toLowerCase(), 'responses', key, 'content', 'application/json', 'schema'));
  if (!validate(body)) throw new Error(`OpenAPI: ${where} does not match the document: ${ajv.errorsText(validate.errors)}; body ${JSON.stringify(body).slice(0, 300)}`);
}
