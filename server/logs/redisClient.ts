import fs from 'node:fs';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';

/**
 * The Redis client of a hub or worker (cluster mode): commands wait through a reconnect rather than
 * fail. A rediss:// URL is TLS with the server's certificate verified (host name included), against
 * HUB_REDIS_CA_FILE if set, else the system's CAs.
 */
export function createRedisClient(config: Pick<Config, 'redisUrl' | 'redisCaFile'>): Redis {
  if (!config.redisUrl) throw new Error('HUB_REDIS_URL is not set');
  const tls = config.redisCaFile ? { ca: fs.readFileSync(config.redisCaFile) } : undefined;
  return new Redis(config.redisUrl, { maxRetriesPerRequest: null, tls });
}
