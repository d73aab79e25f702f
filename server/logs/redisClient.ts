import fs from 'node:fs';
import { Cluster, Redis as RedisServer, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { backoffMs } from '../retry.js';

/**
 * The Redis client of a hub or worker: one Redis server, or a Redis Cluster. Both take the same
 * commands; the log code keeps every key and script of one run in one hash slot (`{run:ID}`), so it
 * needs no other difference, except pub/sub (sharded, see redisLogStream.ts) and SCAN (per master:
 * see `mastersOf`).
 */
export type Redis = RedisServer | Cluster;

/** Reconnects wait from this long, doubling up to the most, with jitter. */
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5000;
/** A command waits through this many reconnects at most (then it fails, and its caller tries again). */
const RETRIES_PER_COMMAND = 3;
const DEFAULT_TIMEOUT_MS = 5000;
/** A Redis Cluster client reads the slots' masters this often (one CLUSTER SLOTS). */
const SLOTS_REFRESH_MS = 1000;

type RedisConfig = Pick<Config, 'redisUrl' | 'redisCaFile'> & Partial<Pick<Config, 'redisTimeoutMs' | 'redisClusterNodes'>>;

/**
 * The Redis client of a hub or worker (cluster mode). Every command has a deadline (`redisTimeoutMs`:
 * a Redis that stops answering, frozen or cut off, fails it instead of holding it for ever) and waits
 * through a few reconnects at most; reconnects back off with jitter. Callers retry what must get
 * through. A rediss:// URL is TLS with the server's certificate verified (host name included),
 * against HUB_REDIS_CA_FILE if set, else the system's CAs. With `redisClusterNodes`, a Redis Cluster
 * client with the same deadlines, whose nodes take the URL's user, password and TLS.
 */
export function createRedisClient(config: RedisConfig): Redis {
  if (!config.redisUrl) throw new Error('HUB_REDIS_URL is not set');
  const tls = config.redisCaFile ? { ca: fs.readFileSync(config.redisCaFile) } : undefined;
  const timeoutMs = config.redisTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const options: RedisOptions = {
    tls,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: RETRIES_PER_COMMAND,
  };
  if (config.redisClusterNodes) return createClusterClient(config.redisUrl, config.redisClusterNodes, options, timeoutMs);
  return new RedisServer(config.redisUrl, { ...options, retryStrategy: (attempt) => backoffMs(attempt - 1, RECONNECT_FIRST_MS, RECONNECT_MAX_MS) });
}

function createClusterClient(url: string, seeds: NonNullable<Config['redisClusterNodes']>, options: RedisOptions, timeoutMs: number): Cluster {
  const { hostname, port, username, password, protocol } = new URL(url);
  const tls = protocol === 'rediss:' ? (options.tls ?? {}) : undefined;
  const clusterOptions: ClusterOptions = {
    redisOptions: { ...options, tls, username: decodeURIComponent(username) || undefined, password: decodeURIComponent(password) || undefined },
    // Reconnects to the whole cluster (no seed answered) back off as the single client's do.
    clusterRetryStrategy: (attempt) => backoffMs(attempt - 1, RECONNECT_FIRST_MS, RECONNECT_MAX_MS),
    // A command queued while the cluster reconnects; its deadline is set below.
    enableOfflineQueue: true,
    // Sharded pub/sub (SSUBSCRIBE): one subscriber connection per master, moved with its slots.
    shardedSubscribers: true,
    // Learning the slots (at start, after a MOVED or a failover) has the commands' deadline.
    slotsRefreshTimeout: timeoutMs,
    // Redirects and the waits through a failover (CLUSTERDOWN, a closed connection) are bounded: 16 × 200 ms.
    maxRedirections: 16,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
  };
  const cluster = new Cluster([{ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) }, ...seeds], clusterOptions);
  withCommandDeadlines(cluster, timeoutMs);
  prepareCluster(cluster);
  return cluster;
}

/** What every Cluster client of ours has, the subscriber of notices (a duplicate) too. */
function prepareCluster(cluster: Cluster): void {
  // A node's error (refused, reset, a node that died) is the cluster's to handle: it refreshes the
  // slots and sends the command where they moved; unheard, it would be an uncaught 'error'.
  cluster.on('node error', () => {});
  keepSlotsFresh(cluster);
}

/**
 * Reads the slots' masters every second (ioredis's default: never). A failover moves no key, so no
 * command gets a MOVED: without this the sharded subscriber of a slot whose master changed (the
 * server unsubscribed it) was never subscribed again on the new master. Not ioredis's own
 * `slotsRefreshInterval`: a refresh under way when the client is closed arms its timer again, for
 * ever, and the process never exits. This timer never holds the process and ends with the client.
 */
function keepSlotsFresh(cluster: Cluster): void {
  const timer = setInterval(() => {
    if (cluster.status === 'ready') cluster.refreshSlotsCache();
  }, SLOTS_REFRESH_MS);
  timer.unref();
  cluster.once('end', () => clearInterval(timer));
}

/** A second client like `redis` (the subscriber of notices: a connection in subscriber mode takes no other command). */
export function duplicateClient(redis: Redis): Redis {
  if (!(redis instanceof Cluster)) return redis.duplicate();
  const copy = redis.duplicate();
  prepareCluster(copy);
  return copy;
}

/**
 * ioredis's Cluster gives a command its deadline only once it reaches a node: one queued while the
 * cluster (re)connects would wait for ever. This starts the deadline when the command is sent
 * (a command keeps the first deadline it is given, so the node's does not extend it).
 */
function withCommandDeadlines(cluster: Cluster, timeoutMs: number): void {
  const send = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = (command, ...rest) => {
    (command as unknown as { setTimeout?(ms: number): void }).setTimeout?.(timeoutMs);
    return send(command, ...rest);
  };
}

/** The nodes a SCAN must walk (each master holds its own keys); one Redis is its own only node. */
export function mastersOf(redis: Redis): RedisServer[] {
  if (!(redis instanceof Cluster)) return [redis];
  const masters = redis.nodes('master');
  if (masters.length === 0) throw new Error('no Redis Cluster master is known yet (the client is still connecting)');
  return masters;
}
