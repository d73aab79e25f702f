import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, startHub } from '../helpers/hub.js';
import { TestClient } from '../helpers/wsClient.js';

const RUNS = 50;
const CONNECTIONS = 1000;
const LINES = 300;

test(`load: ${CONNECTIONS} WebSockets, ${RUNS} concurrent runs and a subscribe/unsubscribe flood; health answers, no line lost`, async () => {
  const hub = await startHub({
    pipelines: {
      paced: { steps: [{ name: 'paced', command: nodeStep(`let i = 0; const t = setInterval(() => { console.log('run ' + process.env.HUB_RUN_ID + ' line ' + (++i)); if (i === ${LINES}) clearInterval(t); }, 5);`) }], scopes: { all: 'paced' } },
    },
  });
  const clients: TestClient[] = [];
  try {
    const projects = [];
    for (let i = 0; i < RUNS; i++) projects.push(await createProject(hub, 'paced'));
    for (let i = 0; i < CONNECTIONS; i += 100) clients.push(...(await Promise.all(Array.from({ length: 100 }, () => TestClient.connect(hub.url)))));
    const runIds: number[] = [];
    for (const projectId of projects) runIds.push((await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body.id);
    clients.forEach((client, index) => client.send({ type: 'subscribe', run_id: runIds[index % RUNS], offset: 0 }));
    // A flood of subscribe/unsubscribe on other runs and projects from every client meanwhile.
    const flood = (async () => {
      for (let round = 0; round < 20; round++) {
        for (const [index, client] of clients.entries()) {
          const other = runIds[(index + round + 1) % RUNS];
          client.send({ type: 'subscribe', run_id: other, tail: 10 });
          client.send({ type: 'unsubscribe', run_id: other });
          client.send({ type: 'subscribe', project_id: projects[index % RUNS] });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const health: number[] = [];
    const probe = setInterval(() => {
      const started = Date.now();
      // A probe that fails is not counted: the test checks how many answered, and how fast.
      hub.api('GET', '/api/health').then((r) => r.status === 200 && health.push(Date.now() - started), () => {});
    }, 200);
    await flood;
    await Promise.all(clients.map((client, index) => client.complete(runIds[index % RUNS], 60_000)));
    clearInterval(probe);
    for (const [index, client] of clients.entries()) {
      const runId = runIds[index % RUNS];
      const lines = client.linesOf(runId, 0).lines.filter((line) => !line.startsWith('[hub]'));
      assert.is(lines.length, LINES, `client ${index}`);
      if (lines[LINES - 1] !== `run ${runId} line ${LINES}`) assert.unreachable(`client ${index}: last line ${lines[LINES - 1]}`);
    }
    assert.ok(health.length > 0, 'health answered during the load');
    health.sort((a, b) => a - b);
    console.log(`  (load: /api/health answered ${health.length} times, p50 ${health[Math.floor(health.length / 2)]} ms, max ${health.at(-1)} ms)`);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await hub.stop();
  }
});

test.run();
