import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisClient } from '../../server/logs/redisClient.js';
import { openPostgresStore } from '../../server/store/postgres/store.js';
import { startWorker } from '../helpers/cluster.js';
import { createProject, sh, startHub, waitForRun } from '../helpers/hub.js';
import { startPostgres } from '../helpers/postgres.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redisCluster.js';
import { TestClient } from '../helpers/wsClient.js';

interface KeyPair {
  certFile: string;
  keyFile: string;
}

/** A CA of its own (self-signed), and server certificates it signs for the names given. */
function makeCertificates(dir: string): { ca: string; issue: (name: string, altNames: string) => KeyPair } {
  const ca = path.join(dir, 'ca.crt');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', ca, '-days', '2', '-subj', '/CN=run hub test CA');
  return {
    ca,
    issue(name, altNames) {
      const extensions = path.join(dir, `${name}.ext`);
      fs.writeFileSync(extensions, `subjectAltName=${altNames}\n`);
      openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', ca, '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', extensions);
      return { certFile: path.join(dir, `${name}.crt`), keyFile: path.join(dir, `${name}.key`) };
    },
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-tls-'));
const certificates = makeCertificates(dir);
/** this server's name: what a client connecting to 127.0.0.1 checks */
const matching = certificates.issue('loopback', 'IP:127.0.0.1,DNS:localhost');
/** signed by the same CA, for another name: only the name check refuses it */
const elsewhere = certificates.issue('elsewhere', 'DNS:db.elsewhere.example');
const verifyFull = `sslmode=verify-full&sslrootcert=${encodeURIComponent(certificates.ca)}`;

test('PostgreSQL over TLS (sslmode=verify-full, sslrootcert: the CA): the store connects encrypted; without TLS it is refused; a certificate for another name is refused', async () => {
  const postgres = await startPostgres({ tls: matching });
  const other = await startPostgres({ tls: elsewhere });
  try {
    const url = await postgres.createDatabase();
    const store = await openPostgresStore(`${url}?${verifyFull}`);
    try {
      const [row] = ((await store.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')) as { rows: { ssl: boolean }[] }).rows;
      assert.is(row.ssl, true);
    } finally {
      await store.close();
    }
    const plain = await openPostgresStore(url).then((s) => s.close().then(() => 'connected'), (error: Error) => error.message);
    assert.match(plain, /no encryption|pg_hba/, 'a connection without TLS is refused');
    const mismatch = await openPostgresStore(`${await other.createDatabase()}?${verifyFull}`).then((s) => s.close().then(() => 'connected'), (error: Error) => error.message);
    assert.match(mismatch, /altnames|does not match|not in the cert/i, `refused for its name: ${mismatch}`);
  } finally {
    await other.stop();
    await postgres.stop();
  }
});

/** The first answer of a client: PONG, or the first error it reports. */
async function firstAnswer(redisUrl: string, redisCaFile: string | null): Promise<string> {
  const redis = createRedisClient({ redisUrl, redisCaFile });
  try {
    return await new Promise<string>((resolve) => {
      redis.once('error', (error: Error) => resolve(`error: ${error.message}`));
      redis.ping().then(resolve, (error: Error) => resolve(`error: ${error.message}`));
    });
  } finally {
    redis.disconnect();
  }
}

test('Redis over TLS (rediss://, HUB_REDIS_CA_FILE): the client verifies the server against the CA and its name; a certificate for another name, or a CA not given, is refused', async () => {
  const redis = await startRedis({ tls: matching });
  const other = await startRedis({ tls: elsewhere });
  try {
    assert.ok(redis.url.startsWith('rediss://'));
    assert.is(await firstAnswer(redis.url, certificates.ca), 'PONG');
    assert.match(await firstAnswer(redis.url, null), /self.signed|unable to (get|verify)/i, 'the system CAs do not know ours');
    assert.match(await firstAnswer(other.url, certificates.ca), /altnames|does not match/i);
    assert.match(await firstAnswer(redis.url.replace('rediss://', 'redis://'), null), /^error: |closed/i, 'plain text to the TLS port');
  } finally {
    await other.stop();
    await redis.stop();
  }
});

test('a hub and a worker on PostgreSQL and Redis both over verified TLS carry out a run and serve its log; the step sees neither URL (nor their passwords)', async () => {
  const postgres = await startPostgres({ tls: matching });
  const redis = await startRedis({ tls: matching });
  const env = { HUB_DATABASE_URL: `${await postgres.createDatabase()}?${verifyFull}`, HUB_REDIS_URL: redis.url, HUB_REDIS_CA_FILE: certificates.ca, HUB_DEMO: '0', HUB_ARCHIVE_DIR: path.join(dir, 'archive') };
  // The step prints what it sees of the URLs (with their passwords) and the CA setting: nothing.
  const hub = await startHub({ pipelines: { p: { steps: [{ name: 'a', command: sh('echo "over tls, seen: [$HUB_DATABASE_URL$HUB_REDIS_URL$HUB_REDIS_CA_FILE]"') }], scopes: { all: 'a' } } }, env });
  const worker = await startWorker(env, 'tls-worker');
  try {
    const projectId = await createProject(hub, 'p');
    const run = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    await waitForRun(hub, projectId, run.id, ['completed'], 20_000);
    assert.match((await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body, /over tls, seen: \[\]/);
  } finally {
    worker.process.kill('SIGKILL');
    await hub.stop();
    await redis.stop();
    await postgres.stop();
  }
});

test('a hub and a worker on a Redis Cluster over verified TLS (3 masters, 3 replicas; the nodes\' bus and replication TLS too): a run followed over WebSocket arrives whole, with one complete', async () => {
  const redisCluster = await startRedisCluster({ tls: { ...matching, caFile: certificates.ca } });
  const postgres = await startPostgres();
  const env = { HUB_DATABASE_URL: await postgres.createDatabase(), ...redisCluster.env, HUB_DEMO: '0', HUB_ARCHIVE_DIR: path.join(dir, 'archive-cluster') };
  const hub = await startHub({ pipelines: { p: { steps: [{ name: 'a', command: sh('i=0; while [ $i -lt 200 ]; do echo "line $i over a TLS cluster"; i=$((i + 1)); done') }], scopes: { all: 'a' } } }, env });
  const worker = await startWorker(env, 'tls-cluster-worker');
  const client = await TestClient.connect(hub.url);
  try {
    assert.ok(redisCluster.url.startsWith('rediss://'));
    // Plain text to a node is refused: nothing of the cluster is reachable without TLS.
    assert.match(await firstAnswer(redisCluster.url.replace('rediss://', 'redis://'), null), /^error: |closed/i, 'plain text to a node');
    const projectId = await createProject(hub, 'p');
    const run = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await client.waitFor((m) => m.type === 'complete' && m.run_id === run.id, 'the run\'s complete', 30_000);
    const lines = client.messages.filter((m) => m.type === 'lines' && m.run_id === run.id).flatMap((m) => m.lines!).filter((line) => !line.startsWith('[hub]'));
    assert.equal(lines, Array.from({ length: 200 }, (_, i) => `line ${i} over a TLS cluster`));
    assert.is(client.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1);
    // The run's keys are on the cluster, read through a verified TLS client of our own.
    const direct = createRedisClient({ redisUrl: redisCluster.env.HUB_REDIS_URL, redisCaFile: certificates.ca, redisClusterNodes: redisCluster.ports.map((port) => ({ host: '127.0.0.1', port })) });
    try {
      const ended = await waitForRun(hub, projectId, run.id, ['completed']);
      assert.is(Number(await direct.get(`hub:log:{run:${run.id}}:size`)), ended.log_size, 'the run\'s stream, read from the cluster over verified TLS');
    } finally {
      direct.disconnect();
    }
  } finally {
    await client.close();
    worker.process.kill('SIGKILL');
    await hub.stop();
    await postgres.stop();
    await redisCluster.stop();
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
