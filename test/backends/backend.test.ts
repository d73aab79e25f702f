import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openBackend, type Backend } from '../../server/backends/backend.js';
import { loadConfig } from '../../server/config.js';
import { loadPipelines } from '../../server/pipelines/load.js';
import { RunService } from '../../server/runs/service.js';
import { isTerminal, type RunRow } from '../../server/store/runs.js';
import type { RemovalReason } from '../../server/wire.js';
import { startWorker, type ClusterWorker } from '../helpers/cluster.js';
import { nodeStep, waitFor } from '../helpers/hub.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import '../helpers/rejections.js';

const PIPELINES = {
  talk: { steps: [{ name: 'talk', command: nodeStep(`for (let i = 1; i <= 300; i++) process.stdout.write('line ' + i + ' é日😀\\n')`) }], scopes: { all: 'talk' } },
};
const EXPECTED = Array.from({ length: 300 }, (_, i) => `line ${i + 1} é日😀\n`).join('');

interface Member {
  backend: Backend;
  service: RunService;
  changed: RunRow[];
  removed: { projectId: number; runId: number; reason: RemovalReason }[];
  close(): Promise<void>;
}

interface Mode {
  /** the environment of a member (a hub) of this mode */
  env: Record<string, string>;
  done(): Promise<void>;
}

/** A member of the mode as server.ts composes one: the backend, a run service on it, the changes it hears. */
async function openMember(mode: Mode): Promise<Member> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-backend-'));
  const config = loadConfig({ HUB_DATA_DIR: path.join(dir, 'data'), HUB_LOGS_DIR: path.join(dir, 'logs'), HUB_DEMO: '0', ...mode.env }, dir);
  const log = pino({ level: 'silent' });
  const backend = await openBackend(config, log);
  const service = new RunService(config, loadPipelines(config.pipelinesFile), backend.store.projects, backend.store.runs, log, (events) => backend.createLauncher(events, async () => ({})), backend.logSizeOf);
  const member: Member = { backend, service, changed: [], removed: [], close: async () => {} };
  const handlers = {
    changed: (run: RunRow) => void member.changed.push(run),
    removed: (projectId: number, runId: number, reason: RemovalReason) => void member.removed.push({ projectId, runId, reason }),
  };
  backend.connectRunChanges(service, handlers);
  service.on('purged', (run, reason) => {
    backend.purgeLog(run, reason, handlers).catch(() => {});
  });
  await service.recover();
  backend.start();
  member.close = async () => {
    await backend.stop();
    await service.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return member;
}

/** Reads a run's whole log through the backend's source for it. */
async function readLog(backend: Backend, run: RunRow): Promise<string> {
  const handle = await backend.logSourceOf(run).open();
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buffer, 0, size, 0);
    return buffer.subarray(0, bytesRead).toString();
  } finally {
    await handle.close();
  }
}

/** What every backend does, whichever mode: the server composes the same calls on both. */
function backendContract(name: string, startMode: () => Promise<Mode>): void {
  const contract = suite<{ mode: Mode; a: Member; b: Member }>(`backend contract: ${name}`);
  contract.before(async (context) => {
    context.mode = await startMode();
    context.a = await openMember(context.mode);
    // A second member: in a cluster, another hub on the same database; embedded, a second look at one.
    context.b = name === 'cluster' ? await openMember(context.mode) : context.a;
  });
  contract.after(async ({ mode, a, b }) => {
    if (b !== a) await b.close();
    await a.close();
    await mode.done();
  });

  contract('a run is carried out, every change of it reaches every member, and its log reads back through the backend\'s source', async ({ a, b }) => {
    const project = await a.backend.store.projects.insert({ name: 'contract', doc_root: os.tmpdir(), pipeline: 'talk', settings: {} });
    const started = await a.service.start(project, { scope: 'all', triggeredBy: 'test', ifBusy: 'reject' });
    for (const member of [a, b]) {
      const ended = await waitFor(() => member.changed.find((run) => run.id === started.id && isTerminal(run.status)), `member ${member === a ? 'a' : 'b'} to hear the run end`, 20_000);
      assert.is(ended.status, 'completed');
      const log = await readLog(member.backend, ended);
      assert.ok(log.includes(EXPECTED), 'the step\'s output, byte for byte, in the log');
      assert.is(ended.log_size, Buffer.byteLength(log), 'the end is recorded at the log\'s size');
      assert.is(member.backend.runJson(ended).log_size, ended.log_size);
    }
  });

  contract('a purged run\'s log goes and every member hears of the removal', async ({ a, b }) => {
    const project = await a.backend.store.projects.insert({ name: 'purged', doc_root: os.tmpdir(), pipeline: 'talk', settings: {} });
    const started = await a.service.start(project, { scope: 'all', triggeredBy: 'test', ifBusy: 'reject' });
    const ended = await waitFor(() => a.changed.find((run) => run.id === started.id && isTerminal(run.status)), 'the run to end', 20_000);
    await waitFor(async () => (await readLog(a.backend, ended)).includes(EXPECTED), 'its log to be readable', 10_000);
    await a.service.purge(ended);
    for (const member of [a, b]) {
      await waitFor(() => member.removed.find((removal) => removal.runId === ended.id && removal.reason === 'purged'), 'the removal to be heard', 10_000);
    }
    // Gone: nothing to read (embedded), or, to a reader holding the run's old record of a finished
    // log, "unavailable" (cluster: a finished log is read whole or not at all).
    const gone = async () => (await readLog(b.backend, ended).catch((error: { code?: string }) => (error.code === 'log_unavailable' ? '' : Promise.reject(error)))) === '';
    await waitFor(gone, 'the log to be gone', 10_000);
  });

  contract('readiness names the parts it checks, and each answers while they are up', async ({ a }) => {
    const checks = a.backend.readyChecks();
    assert.ok('database' in checks, Object.keys(checks).join(', '));
    for (const [part, check] of Object.entries(checks)) await check().catch((error: Error) => assert.unreachable(`${part}: ${error.message}`));
  });

  contract.run();
}

const pipelinesFile = (dir: string) => {
  const file = path.join(dir, 'pipelines.json');
  fs.writeFileSync(file, JSON.stringify({ pipelines: PIPELINES }));
  return file;
};

backendContract('embedded', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-embedded-'));
  return { env: { HUB_PIPELINES: pipelinesFile(dir) }, done: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

backendContract('cluster', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-cluster-'));
  const postgres: TestPostgres = await startPostgres();
  const redis: TestRedis = await startRedis();
  const env = { HUB_PIPELINES: pipelinesFile(dir), HUB_DATABASE_URL: await postgres.createDatabase(), HUB_REDIS_URL: redis.url, HUB_ARCHIVE_DIR: path.join(dir, 'archive') };
  const worker: ClusterWorker = await startWorker(env, 'contract');
  return {
    env,
    done: async () => {
      worker.process.kill('SIGKILL');
      await redis.stop();
      await postgres.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
