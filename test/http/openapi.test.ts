import { Ajv2020 } from 'ajv/dist/2020.js';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../server/config.js';
import { createRouters } from '../../server/http/app.js';
import type { AppServices } from '../../server/http/context.js';
import { messagesSchema, openApiDocument } from '../../server/schemas/openapi.js';
import { createProject, startHub, waitForRun } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const document = openApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Every route the routers serve, as `METHOD /openapi/{style}`. */
function servedRoutes(): Set<string> {
  // Routes are registered without touching their services; only the config is read on creation.
  const services = { config: loadConfig({}, '/tmp'), log: pino({ level: 'silent' }) } as unknown as AppServices;
  const routes = new Set<string>();
  for (const router of createRouters(services)) {
    for (const layer of router.stack) {
      for (const method of layer.methods) {
        if (method !== 'HEAD') routes.add(`${method} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`);
      }
    }
  }
  return routes;
}

test('every route the server has is in the OpenAPI document, and every route the document has is served', () => {
  const served = servedRoutes();
  const documented = new Set(Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`)));
  assert.equal([...served].filter((route) => !documented.has(route)), [], 'routes missing from the document');
  assert.equal([...documented].filter((route) => !served.has(route)), [], 'documented routes nobody serves');
  assert.ok(served.size >= 25, `${served.size} routes`);
});

test('the document is served at /api/openapi.json, its schemas compile, and every operation documents its error bodies', async () => {
  const hub = await startHub();
  try {
    const served = await hub.api('GET', '/api/openapi.json');
    assert.equal(served.body, JSON.parse(JSON.stringify(document)));
    assert.is(served.body.openapi, '3.1.0');
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ ...served.body, $id: 'doc' });
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (path !== '/login') assert.ok(operation.responses['401'], `${method} ${path} documents 401`);
        for (const status of Object.keys(operation.responses)) {
          const content = (operation.responses[status] as { content?: Record<string, unknown> }).content ?? {};
          for (const type of Object.keys(content)) ajv.compile({ $ref: `doc#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/responses/${status}/content/${type.replace(/\//g, '~1')}/schema` });
        }
      }
    }
    const messages = await hub.api('GET', '/api/messages.schema.json');
    assert.equal(Object.keys(messages.body.$defs).sort(), ['ClientMessage', 'Run', 'ServerMessage']);
  } finally {
    await hub.stop();
  }
});

test('WebSocket messages match /api/messages.schema.json both ways: what clients send, and all the hub sent in a session', async () => {
  const hub = await startHub({ pipelines: { quick: { steps: [{ name: 'q', command: ['sh', '-c', 'echo one; echo two'] }], scopes: { all: 'q' } } } });
  try {
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ ...messagesSchema(), $id: 'messages' });
    const isClientMessage = ajv.compile({ $ref: 'messages#/$defs/ClientMessage' });
    const isServerMessage = ajv.compile({ $ref: 'messages#/$defs/ServerMessage' });
    const projectId = await createProject(hub, 'quick');
    const client = await TestClient.connect(hub.url);
    const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    const sent = [{ type: 'subscribe', project_id: projectId }, { type: 'subscribe', run_id: run.id, offset: 0 }, { type: 'subscribe', run_id: 424242, tail: 5 }, { type: 'unsubscribe', project_id: projectId }];
    for (const message of sent) {
      assert.ok(isClientMessage(message), `${JSON.stringify(message)}: ${ajv.errorsText(isClientMessage.errors)}`);
      client.send(message);
    }
    assert.not.ok(isClientMessage({ type: 'subscribe', run_id: 1, path: '/etc/passwd' }), 'unknown fields are not in the schema');
    await client.complete(run.id);
    await waitForRun(hub, projectId, run.id, ['completed']);
    await client.waitFor((m) => m.type === 'error' && m.run_id === 424242, 'the error about an unknown run');
    const types = new Set<string>();
    for (const message of client.messages) {
      types.add(message.type);
      assert.ok(isServerMessage(message), `${JSON.stringify(message).slice(0, 300)}: ${ajv.errorsText(isServerMessage.errors)}`);
    }
    assert.equal([...types].sort(), ['complete', 'error', 'lines', 'run', 'subscribed']);
    await client.close();
  } finally {
    await hub.stop();
  }
});

test.run();
