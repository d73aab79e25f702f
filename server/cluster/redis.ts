import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { hasExited, killProcess, stopProcess } from './processes.js';
import { readOrCreateSecret } from './secrets.js';
import { freePort, waitUntil, type LocalServer } from './services.js';

export interface LocalRedisOptions {
  /** the port (a restart keeps it); default a free one */
  port?: number;
  /** where redis.password goes; default `dir` */
  secretsDir?: string;
  /** TLS only (the port is a tls-port): the server's certificate and key, PEM files; `caFile`: what a cluster node verifies the others by */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  /** also listen on this address (the password is required on every address); default loopback only */
  listenAddress?: string;
  /** a Redis Cluster node (cluster-enabled, its nodes.conf in `dir`, the password its replicas use too) talking to the others on `busPort`, which takes a master as failed after `nodeTimeoutMs` */
  cluster?: { busPort: number; nodeTimeoutMs: number };
}

/** A config value in double quotes (paths may hold spaces). */
const quote = (value: string) => `"${value.replace(/[\\"]/g, '\\$&')}"`;

/**
 * A redis-server on a loopback port, its append-only file in `dir`, never evicting, a generated
 * password required (`requirepass`, in a config file of mode 0600: on the command line every user
 * would see it in ps).
 */
export async function startLocalRedis(dir: string, options: LocalRedisOptions = {}): Promise<LocalServer> {
  if (!fs.existsSync('/usr/bin/redis-server')) throw new Error('redis-server is not installed: apt-get install -y redis-server');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secretsDir = options.secretsDir ?? dir;
  fs.mkdirSync(secretsDir, { recursive: true });
  const password = readOrCreateSecret(path.join(secretsDir, 'redis.password'));
  const port = options.port ?? (await freePort());
  const lines = [`bind 127.0.0.1${options.listenAddress ? ` ${options.listenAddress}` : ''}`, 'protected-mode yes', `dir ${quote(dir)}`, 'save ""', 'appendonly yes', 'appendfsync always', 'maxmemory-policy noeviction', `requirepass ${password}`];
  if (options.cluster) lines.push('cluster-enabled yes', 'cluster-config-file nodes.conf', `cluster-port ${options.cluster.busPort}`, `cluster-node-timeout ${options.cluster.nodeTimeoutMs}`, `masterauth ${password}`);
  if (options.tls) {
    lines.push('port 0', `tls-port ${port}`, `tls-cert-file ${quote(path.resolve(options.tls.certFile))}`, `tls-key-file ${quote(path.resolve(options.tls.keyFile))}`, 'tls-auth-clients no');
    // A cluster's nodes talk TLS to each other too (the bus, and replicas to their masters); their
    // own certificate is the client one they present (the nodes do not ask clients for one).
    if (options.cluster) {
      if (!options.tls.caFile) throw new Error('a Redis Cluster node over TLS needs the CA its peers\' certificates are signed by (tls.caFile)');
      lines.push('tls-cluster yes', 'tls-replication yes', `tls-ca-cert-file ${quote(path.resolve(options.tls.caFile))}`);
    }
  } else {
    lines.push(`port ${port}`);
  }
  const configFile = path.join(dir, 'redis.conf');
  fs.writeFileSync(configFile, `# written by the hub's launcher at each start\n${lines.join('\n')}\n`, { mode: 0o600 });
  fs.chmodSync(configFile, 0o600);
  // Its own process group: a Ctrl-C in the terminal reaches only the launcher, which stops Redis after the workers.
  const server = spawn('redis-server', [configFile], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  server.stdout!.on('data', (chunk) => (output = (output + chunk).slice(-16_384)));
  server.stderr!.on('data', (chunk) => (output = (output + chunk).slice(-16_384)));
  const stop = () => stopProcess(server, { graceMs: 10_000 });
  const ready = async () => {
    // The launcher's own connection to a server it just started: TLS without verification is enough here.
    const client = new Redis({ port, host: '127.0.0.1', password, tls: options.tls ? { rejectUnauthorized: false } : undefined, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {}); // refused until the server is up
    try {
      await client.connect();
      await client.ping();
      return true;
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  };
  try {
    await waitUntil(ready, 'redis-server', () => hasExited(server), () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `${options.tls ? 'rediss' : 'redis'}://:${password}@127.0.0.1:${port}`,
    process: server,
    stop,
    kill: () => killProcess(server, { group: true }),
  };
}
