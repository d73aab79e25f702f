import fs from 'node:fs';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { backoffMs } from '../retry.js';

/** Reconnects wait from this long, doubling up to the most, with jitter. */
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5000;
/** A command waits through this many reconnects at most (then it fails, and its caller tries again). */
const RETRIES_PER_COMMAND = 3;
const DEFAULT_TIMEOUT_MS = 5000;

/**
 * The Redis client of a hub or worker (cluster mode). Every command has a deadline (`redisTimeoutMs`:
 * a Redis that stops answering, frozen or cut off, fails it instead of holding it for ever) and waits
 * through a few reconnects at most; reconnects back off with jitter. Callers retry what must get
 * through. A rediss:// URL is TLS with the server's certificate verified (host name included),
 * against HUB_REDIS_CA_FILE if set, else the system's CAs.
 */
export function createRedisClient(config: Pick<Config, 'redisUrl' | 'redisCaFile'> & Partial<Pick<Config, 'redisTimeoutMs'>>): Redis {
  if (!config.redisUrl) throw new Error('HUB_REDIS_URL is not set');
  const tls = config.redisCaFile ? { ca: fs.readFileSync(config.redisCaFile) } : undefined;
  const timeoutMs = config.redisTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Redis(config.redisUrl, {
    tls,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: RETRIES_PER_COMMAND,
    retryStrategy: (attempt) => backoffMs(attempt - 1, RECONNECT_FIRST_MS, RECONNECT_MAX_MS),
  });
}
