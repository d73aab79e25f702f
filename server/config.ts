import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtInPipelinesFile } from './paths.js';

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logsDir: string;
  readonly pipelinesFile: string;
  readonly dbFile: string;
  /** PostgreSQL instead of the SQLite file (HUB_DATABASE_URL); null: embedded SQLite */
  readonly databaseUrl: string | null;
  /** cluster mode (with HUB_DATABASE_URL): logs through Redis Streams, runs on workers */
  readonly redisUrl: string | null;
  /**
   * Redis is a Redis Cluster (HUB_REDIS_CLUSTER_NODES): seed nodes the client learns the cluster from,
   * besides HUB_REDIS_URL's host (whose scheme, user and password apply to every node); null: one Redis
   */
  readonly redisClusterNodes: readonly { readonly host: string; readonly port: number }[] | null;
  /** the CA that signed a rediss:// server's certificate (HUB_REDIS_CA_FILE); null: the system's CAs */
  readonly redisCaFile: string | null;
  /** cluster mode: where finished logs are archived, a folder every hub and worker mounts */
  readonly archiveDir: string;
  /** cluster mode: the archive on S3 instead (`s3://bucket/prefix`; AWS settings from the usual AWS_* variables) */
  readonly archiveS3: string | null;
  /** S3 addressed by path (an S3-compatible server at AWS_ENDPOINT_URL_S3), not by bucket host name */
  readonly archiveS3PathStyle: boolean;
  /** cluster mode: how often a hub looks for finished logs that were never archived (and how old their end must be) */
  readonly archiveSweepMs: number;
  /** at SIGTERM, WebSocket and SSE clients are closed over this long, not all at once (0: no drain, all at once; the default outside cluster mode, where no other hub takes them) */
  readonly drainMs: number;
  /** this worker's name (cluster mode; default host-pid) */
  readonly workerId: string;
  /** a worker not heard from for this long is lost, and its runs fail */
  readonly workerTimeoutMs: number;
  /** runs one worker carries out at once */
  readonly workerSlots: number;
  /** a worker hears of claims and cancels by LISTEN; it also polls this often, in case a notice was missed */
  readonly workerPollMs: number;
  /** PostgreSQL: taking a connection from the pool or opening one (the LISTEN one too) gives up after this */
  readonly dbConnectTimeoutMs: number;
  /** PostgreSQL: a statement's deadline (statement_timeout; the client gives up a second later) */
  readonly dbStatementTimeoutMs: number;
  /** Redis: a command's deadline, and a connection attempt's */
  readonly redisTimeoutMs: number;
  /** the S3 archive: a request's deadline (each of the SDK's tries) */
  readonly archiveTimeoutMs: number;
  /** a hub reads what changed in the runs this often, behind the notifications (and pings its LISTEN connection) */
  readonly resyncMs: number;
  /** a worker waits this long for a finished run's log to reach Redis; then the archive takes it instead */
  readonly shipDeadlineMs: number;
  /** a worker moves a running log to the object store in chunks of this many bytes; Redis keeps the tail */
  readonly logChunkBytes: number;
  /** each check of `/api/ready` fails past this */
  readonly readyTimeoutMs: number;
  readonly cancelGraceMs: number;
  readonly maxLineBytes: number;
  readonly maxLogBytes: number;
  readonly wsMaxFrameBytes: number;
  readonly wsMaxSubscriptions: number;
  readonly wsHeartbeatMs: number;
  readonly wsHighWaterBytes: number;
  readonly wsStallTimeoutMs: number;
  readonly seedDemo: boolean;
  /** when set, every HTTP request and WebSocket handshake must carry it */
  readonly token: string | null;
  /** origins besides the hub's own that may open a WebSocket or send requests */
  readonly allowedOrigins: readonly string[];
  /** Host header values accepted besides the bound loopback names */
  readonly allowedHosts: readonly string[];
  readonly wsMaxConnectionsPerAddress: number;
  /** the longest a client may take to send a request's head (then 408 and closed) */
  readonly headersTimeoutMs: number;
  /** the longest a client may take to send a whole request, head and body (not the response: streams last) */
  readonly requestTimeoutMs: number;
  /** connections that have not sent a whole request head yet; past this many the oldest is closed */
  readonly maxWaitingConnections: number;
  readonly runsPerMinutePerProject: number;
  /** the default retention of finished runs per project (null: no limit); a project may override each */
  /** the GUI's address as others reach it (webhook payloads link to runs); default: the listening address */
  readonly publicUrl: string | null;
  /** webhook deliveries: the wait after the first failed try (4× longer each time), and tries in all */
  readonly webhookRetryMs: number;
  readonly webhookRetryMaxMs: number;
  readonly webhookTries: number;
  /** the key that encrypts project secrets (HUB_SECRET_KEY_FILE; made with mode 0600 when absent). Every hub and worker of a cluster needs the same one */
  readonly secretKeyFile: string;
  readonly retention: { readonly runs: number | null; readonly days: number | null; readonly log_bytes: number | null };
  readonly logLevel: string;
  /** a cluster hub keeps the section index files of this many finished runs (those used last) */
  readonly sectionCacheRuns: number;
}

type Env = Record<string, string | undefined>;

function readInteger(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new Error(`Expected ${name} to be a whole number, got ${JSON.stringify(raw)}`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new Error(`Expected ${name} to be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A positive integer limit, or null (the default) for none. */
function readLimit(env: Env, name: string): number | null {
  return env[name] === undefined || env[name] === '' ? null : readInteger(env, name, 0, 1);
}

function readList(env: Env, name: string): string[] {
  return (env[name] ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function readLogLevel(env: Env): string {
  const level = env.HUB_LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(level as never)) throw new Error(`Expected HUB_LOG_LEVEL to be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  return level;
}

function readDatabaseUrl(env: Env): string | null {
  const url = env.HUB_DATABASE_URL;
  if (!url) return null;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new Error('Expected HUB_DATABASE_URL to be a postgres:// or postgresql:// URL');
  return url;
}

function readRedisUrl(env: Env): string | null {
  const url = env.HUB_REDIS_URL;
  if (!url) return null;
  if (!/^rediss?:\/\//.test(url)) throw new Error('Expected HUB_REDIS_URL to be a redis:// or rediss:// URL');
  if (!env.HUB_DATABASE_URL) throw new Error('HUB_REDIS_URL (cluster mode) needs HUB_DATABASE_URL too: run records live in PostgreSQL');
  return url;
}

/** `host:port,host:port`: a Redis Cluster's seed nodes (needs HUB_REDIS_URL: one of them, with the password). */
function readRedisClusterNodes(env: Env): Config['redisClusterNodes'] {
  const nodes = readList(env, 'HUB_REDIS_CLUSTER_NODES');
  if (nodes.length === 0) return null;
  if (!env.HUB_REDIS_URL) throw new Error('HUB_REDIS_CLUSTER_NODES needs HUB_REDIS_URL too: a node of the cluster, with the password (and rediss:// for TLS) every node takes');
  return Object.freeze(nodes.map((node) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(node);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new Error(`Expected HUB_REDIS_CLUSTER_NODES to be host:port items separated by commas, got ${JSON.stringify(node)}`);
    return Object.freeze({ host: match[1].replace(/^\[|\]$/g, ''), port });
  }));
}

function readRedisCaFile(env: Env, cwd: string): string | null {
  const file = env.HUB_REDIS_CA_FILE;
  if (!file) return null;
  if (!env.HUB_REDIS_URL?.startsWith('rediss://')) throw new Error('HUB_REDIS_CA_FILE is for TLS: HUB_REDIS_URL must be a rediss:// URL');
  return path.resolve(cwd, file);
}

function readArchiveS3(env: Env): string | null {
  const url = env.HUB_ARCHIVE_S3;
  if (!url) return null;
  if (!/^s3:\/\/[^/]+/.test(url)) throw new Error(`Expected HUB_ARCHIVE_S3 to be like s3://bucket/prefix, got ${JSON.stringify(url)}`);
  return url;
}

function readToken(env: Env): string | null {
  const token = env.HUB_TOKEN;
  if (!token) return null;
  if (token.length < 16 || !/^[\x21-\x7e]+$/.test(token)) throw new Error('Expected HUB_TOKEN to be at least 16 printable ASCII characters without spaces');
  return token;
}

/** The process's open-file limit (Linux: /proc/self/limits), or null where it cannot be read. */
function openFileLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Waiting connections hold a descriptor each: by default a quarter of the limit may, the rest is for clients that sent a request, log files and runners. */
const defaultMaxWaitingConnections = () => Math.max(16, Math.floor((openFileLimit() ?? 1024) / 4));

function readRequestTimeouts(env: Env): { headersTimeoutMs: number; requestTimeoutMs: number } {
  const headersTimeoutMs = readInteger(env, 'HUB_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000);
  const requestTimeoutMs = readInteger(env, 'HUB_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000);
  if (headersTimeoutMs > requestTimeoutMs) throw new Error(`Expected HUB_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) to be at most HUB_REQUEST_TIMEOUT_MS (${requestTimeoutMs}): the head is part of the request`);
  return { headersTimeoutMs, requestTimeoutMs };
}

/** The only reader of the environment: validated once, defaults filled, frozen. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const dataDir = path.resolve(cwd, env.HUB_DATA_DIR || 'data');
  return Object.freeze({
    host: env.HOST || '127.0.0.1',
    port: readInteger(env, 'PORT', 8080, 0, 65535),
    dataDir,
    logsDir: path.resolve(cwd, env.HUB_LOGS_DIR || 'logs'),
    pipelinesFile: env.HUB_PIPELINES ? path.resolve(cwd, env.HUB_PIPELINES) : builtInPipelinesFile,
    dbFile: path.join(dataDir, 'hub.sqlite'),
    databaseUrl: readDatabaseUrl(env),
    redisUrl: readRedisUrl(env),
    redisClusterNodes: readRedisClusterNodes(env),
    redisCaFile: readRedisCaFile(env, cwd),
    archiveDir: path.resolve(cwd, env.HUB_ARCHIVE_DIR || path.join(dataDir, 'archive')),
    archiveS3: readArchiveS3(env),
    archiveS3PathStyle: Boolean(env.AWS_ENDPOINT_URL_S3),
    archiveSweepMs: readInteger(env, 'HUB_ARCHIVE_SWEEP_MS', 10_000, 100, 86_400_000),
    drainMs: readInteger(env, 'HUB_DRAIN_MS', env.HUB_REDIS_URL ? 5000 : 0, 0, 600_000),
    workerId: env.HUB_WORKER_ID || `${os.hostname()}-${process.pid}`,
    workerTimeoutMs: readInteger(env, 'HUB_WORKER_TIMEOUT_MS', 15_000, 500, 3_600_000),
    workerSlots: readInteger(env, 'HUB_WORKER_SLOTS', 4, 1, 1000),
    workerPollMs: readInteger(env, 'HUB_WORKER_POLL_MS', 5000, 50, 600_000),
    dbConnectTimeoutMs: readInteger(env, 'HUB_DB_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
    dbStatementTimeoutMs: readInteger(env, 'HUB_DB_STATEMENT_TIMEOUT_MS', 30_000, 100, 3_600_000),
    redisTimeoutMs: readInteger(env, 'HUB_REDIS_TIMEOUT_MS', 5000, 100, 600_000),
    archiveTimeoutMs: readInteger(env, 'HUB_ARCHIVE_TIMEOUT_MS', 30_000, 100, 3_600_000),
    resyncMs: readInteger(env, 'HUB_RESYNC_MS', 5000, 100, 600_000),
    shipDeadlineMs: readInteger(env, 'HUB_SHIP_DEADLINE_MS', 15_000, 100, 3_600_000),
    logChunkBytes: readInteger(env, 'HUB_LOG_CHUNK_BYTES', 1024 * 1024, 4096, 256 * 1024 * 1024),
    readyTimeoutMs: readInteger(env, 'HUB_READY_TIMEOUT_MS', 2000, 50, 60_000),
    cancelGraceMs: readInteger(env, 'HUB_CANCEL_GRACE_MS', 5000, 0, 600_000),
    maxLineBytes: readInteger(env, 'HUB_MAX_LINE_BYTES', 1024 * 1024, 16, 64 * 1024 * 1024),
    maxLogBytes: readInteger(env, 'HUB_MAX_LOG_BYTES', 1024 ** 3, 1024),
    wsMaxFrameBytes: readInteger(env, 'HUB_WS_MAX_FRAME_BYTES', 64 * 1024, 256, 16 * 1024 * 1024),
    wsMaxSubscriptions: readInteger(env, 'HUB_WS_MAX_SUBSCRIPTIONS', 100, 1, 100_000),
    wsHeartbeatMs: readInteger(env, 'HUB_WS_HEARTBEAT_MS', 30_000, 10, 3_600_000),
    wsHighWaterBytes: readInteger(env, 'HUB_WS_HIGH_WATER_BYTES', 4 * 1024 * 1024, 1024),
    wsStallTimeoutMs: readInteger(env, 'HUB_WS_STALL_TIMEOUT_MS', 60_000, 100, 3_600_000),
    seedDemo: env.HUB_DEMO !== '0',
    token: readToken(env),
    allowedOrigins: Object.freeze(readList(env, 'HUB_ALLOWED_ORIGINS').map((origin) => origin.replace(/\/+$/, '').toLowerCase())),
    allowedHosts: Object.freeze(readList(env, 'HUB_ALLOWED_HOSTS').map((host) => host.toLowerCase())),
    wsMaxConnectionsPerAddress: readInteger(env, 'HUB_WS_MAX_CONNECTIONS_PER_ADDRESS', 2000, 1),
    ...readRequestTimeouts(env),
    maxWaitingConnections: readInteger(env, 'HUB_MAX_WAITING_CONNECTIONS', defaultMaxWaitingConnections(), 1),
    runsPerMinutePerProject: readInteger(env, 'HUB_RUNS_PER_MINUTE', 60, 1),
    publicUrl: env.HUB_PUBLIC_URL ? env.HUB_PUBLIC_URL.replace(/\/+$/, '') : null,
    webhookRetryMs: readInteger(env, 'HUB_WEBHOOK_RETRY_MS', 5000, 10, 3_600_000),
    webhookRetryMaxMs: readInteger(env, 'HUB_WEBHOOK_RETRY_MAX_MS', 3_600_000, 10, 86_400_000),
    webhookTries: readInteger(env, 'HUB_WEBHOOK_TRIES', 5, 1, 20),
    secretKeyFile: path.resolve(cwd, env.HUB_SECRET_KEY_FILE || path.join(dataDir, 'secret.key')),
    retention: Object.freeze({
      runs: readLimit(env, 'HUB_RETENTION_RUNS'),
      days: readLimit(env, 'HUB_RETENTION_DAYS'),
      log_bytes: readLimit(env, 'HUB_RETENTION_LOG_BYTES'),
    }),
    logLevel: readLogLevel(env),
    sectionCacheRuns: readInteger(env, 'HUB_SECTION_CACHE_RUNS', 200, 1, 1_000_000),
  });
}
