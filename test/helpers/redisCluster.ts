import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../../server/cluster/redis.js';
import { freePort, type LocalServer } from '../../server/cluster/services.js';
import { waitFor } from './hub.js';
import type { TestRedis } from './redis.js';

const run = promisify(execFile);

/** A master is taken as failed after this long unheard (its replica then takes over). */
const NODE_TIMEOUT_MS = 1000;

/** A Redis Cluster is a TestRedis too (startCluster takes either), with what a Cluster has besides. */
export interface TestRedisCluster extends TestRedis {
  /** a node's URL with the password: HUB_REDIS_URL */
  url: string;
  /** what a hub or worker is given to use it (HUB_REDIS_URL, HUB_REDIS_CLUSTER_NODES) */
  env: { HUB_REDIS_URL: string; HUB_REDIS_CLUSTER_NODES: string; HUB_REDIS_CA_FILE?: string };
  /** every node's port */
  ports: number[];
  /** the master that serves `key`'s slot now, and its replica (null: none known, as once its master was killed and it took over) */
  shardOf(key: string): Promise<{ master: number; replica: number | null }>;
  /**
   * Fails `key`'s master over to its replica and waits until the replica is master and every node
   * says the cluster is ok; `kill`: the master is SIGKILLed (else: CLUSTER FAILOVER, coordinated).
   * Returns how long the cluster took.
   */
  failOver(key: string, options: { kill: boolean }): Promise<{ ms: number; from: number; to: number }>;
  stop(): Promise<void>;
}

/** The nodes' certificate and key, and the CA that signed them: a cluster over TLS (bus and replication too). */
export interface ClusterTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** TLS for the helper's own connections, when the cluster has it. */
let adminTls: { ca: Buffer } | undefined;

/** Answers of one node; every command has a deadline, and a node that is away fails at once. */
function admin(port: number, password: string): Redis {
  const client = new Redis({ host: '127.0.0.1', port, password, tls: adminTls, lazyConnect: true, commandTimeout: 2000, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  return client;
}

/** `command` on the node at `port`, from a connection of its own (closed after). */
async function ask(port: number, password: string, ...command: [string, ...(string | number)[]]): Promise<string> {
  const client = admin(port, password);
  try {
    await client.connect();
    return String(await client.call(...command));
  } finally {
    client.disconnect();
  }
}

const field = (info: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();

/**
 * A Redis Cluster of its own for a test: 3 masters and 3 replicas on free loopback ports (bus ports
 * chosen too, so none falls above 65535), one password on every node (replicas use it as
 * masterauth), made with `redis-cli --cluster create`; ready once every node says cluster_state:ok,
 * knows the 6 nodes, and every replica has its master's data.
 */
export async function startRedisCluster(options: { tls?: ClusterTls } = {}): Promise<TestRedisCluster> {
  adminTls = options.tls ? { ca: fs.readFileSync(options.tls.caFile) } : undefined;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-redis-cluster-'));
  const servers = new Map<number, LocalServer>();
  const stop = async () => {
    await Promise.all([...servers.values()].map((server) => server.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      servers.set(port, await startLocalRedis(path.join(root, `node${i}`), { port, secretsDir: root, cluster: { busPort, nodeTimeoutMs: NODE_TIMEOUT_MS }, tls: options.tls }));
    }
    const ports = [...servers.keys()];
    const password = fs.readFileSync(path.join(root, 'redis.password'), 'utf8').trim();
    // The password through the environment: on the command line, ps would show it.
    const tlsArgs = options.tls ? ['--tls', '--cacert', options.tls.caFile] : [];
    await run('redis-cli', [...tlsArgs, '--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'], { env: { ...process.env, REDISCLI_AUTH: password }, timeout: 30_000 });
    const slotsOf = async (port: number) => {
      const client = admin(port, password);
      try {
        await client.connect();
        return (await client.call('CLUSTER', 'SLOTS')) as [number, number, ...[string, number, string][]][];
      } finally {
        client.disconnect();
      }
    };
    const ready = async (live: number[]) => {
      for (const port of live) {
        const info = await ask(port, password, 'CLUSTER', 'INFO');
        if (field(info, 'cluster_state') !== 'ok' || field(info, 'cluster_known_nodes') !== '6') return false;
        const replication = await ask(port, password, 'INFO', 'replication');
        if (field(replication, 'role') === 'slave' && field(replication, 'master_link_status') !== 'up') return false;
        // Each node has heard which node is whose replica (gossip): every slot range has one.
        const slots = await slotsOf(port);
        if (slots.length !== 3 || slots.some((range) => range.length < 4)) return false;
      }
      return true;
    };
    await waitFor(() => ready(ports).catch(() => false), 'the Redis Cluster to be ok on every node', 30_000, 100);

    const shardOf = async (key: string) => {
      const live = ports.filter((port) => servers.get(port)!.process.exitCode === null && servers.get(port)!.process.signalCode === null);
      const slot = Number(await ask(live[0], password, 'CLUSTER', 'KEYSLOT', key));
      const slots = await slotsOf(live[0]);
      const range = slots.find(([from, to]) => from <= slot && slot <= to);
      if (!range) throw new Error(`slot ${slot} has no master: ${JSON.stringify(slots)}`);
      return { master: range[2][1], replica: range[3]?.[1] ?? null };
    };
    const url = `${options.tls ? 'rediss' : 'redis'}://:${encodeURIComponent(password)}@127.0.0.1:${ports[0]}`;
    return {
      url,
      env: { HUB_REDIS_URL: url, HUB_REDIS_CLUSTER_NODES: ports.map((port) => `127.0.0.1:${port}`).join(','), ...(options.tls ? { HUB_REDIS_CA_FILE: options.tls.caFile } : {}) },
      ports,
      shardOf,
      async failOver(key, { kill }) {
        const { master, replica } = await shardOf(key);
        if (replica === null) throw new Error(`${key}'s master ${master} has no replica to take over`);
        const started = Date.now();
        if (kill) servers.get(master)!.process.kill('SIGKILL');
        else await ask(replica, password, 'CLUSTER', 'FAILOVER');
        const live = kill ? ports.filter((port) => port !== master) : ports;
        await waitFor(async () => {
          const replication = await ask(replica, password, 'INFO', 'replication').catch(() => '');
          if (field(replication, 'role') !== 'master') return false;
          for (const port of live) if (field(await ask(port, password, 'CLUSTER', 'INFO').catch(() => ''), 'cluster_state') !== 'ok') return false;
          return true;
        }, `node ${replica} to take over from ${master}`, 30_000, 100);
        return { ms: Date.now() - started, from: master, to: replica };
      },
      signal(signal) {
        for (const server of servers.values()) server.process.kill(signal);
      },
      restart() {
        return Promise.reject(new Error('restarting a whole Redis Cluster is not built: fail a master over instead'));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
