/** `npm run worker`: a cluster worker (HUB_DATABASE_URL, HUB_REDIS_URL, HUB_WORKER_ID, its own HUB_LOGS_DIR). */
import { createRedisClient } from '../logs/redisClient.js';
import pino from 'pino';
import { loadConfig } from '../config.js';
import { openPostgresStore, postgresTimeouts } from '../store/postgres/store.js';
import { Worker } from './worker.js';
import { openArchive } from '../logs/archive.js';
import { exitOnUnhandledRejection } from '../unhandled.js';

try {
  const config = loadConfig();
  if (!config.databaseUrl || !config.redisUrl) throw new Error('A worker needs HUB_DATABASE_URL (PostgreSQL) and HUB_REDIS_URL (Redis)');
  const log = pino({ level: config.logLevel });
  exitOnUnhandledRejection(log);
  const store = await openPostgresStore(config.databaseUrl, postgresTimeouts(config));
  const redis = createRedisClient(config);
  redis.on('error', () => {}); // reconnects on its own; appends fail past their deadline meanwhile and are retried
  const worker = new Worker(config, store, redis, await openArchive(config), log);
  await worker.start();
  log.info(`run hub worker ${worker.id} started`);
  const shutdown = (signal: string) => {
    log.info({ signal }, 'worker stopping; its runners keep running and are re-attached when it starts again');
    setTimeout(() => process.exit(1), 5000).unref();
    worker.close().then(() => store.close()).then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
} catch (error) {
  process.stderr.write(`run hub worker could not start: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
