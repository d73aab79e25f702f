import pino from 'pino';
import { loadConfig } from './config.js';
import { startHub } from './server.js';
import { exitOnUnhandledRejection } from './unhandled.js';

try {
  const config = loadConfig();
  const log = pino({ level: config.logLevel });
  exitOnUnhandledRejection(log);
  const hub = await startHub(config, log);
  log.info(`run hub listening on ${hub.url}`);
  // SIGTERM (an orchestrator's stop) drains first: clients go to other hubs a few at a time. SIGINT stops at once.
  const shutdown = (signal: string, drain: boolean) => {
    log.info({ signal }, 'shutting down; runners keep running and are re-attached on the next start');
    const forced = setTimeout(() => process.exit(1), (drain ? config.drainMs : 0) + 5000);
    forced.unref();
    (drain ? hub.drain() : Promise.resolve()).then(() => hub.close()).then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM', config.drainMs > 0));
  process.once('SIGINT', () => shutdown('SIGINT', false));
} catch (error) {
  // Plain text: this is read by a person at a terminal, before anything else has started.
  process.stderr.write(`run hub could not start: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
