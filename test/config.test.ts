import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../server/config.js';

test('defaults: loopback, port 8080, data and logs under the working directory, frozen', () => {
  const config = loadConfig({}, '/srv/hub');
  assert.is(config.host, '127.0.0.1');
  assert.is(config.port, 8080);
  assert.is(config.dbFile, '/srv/hub/data/hub.sqlite');
  assert.is(config.logsDir, '/srv/hub/logs');
  assert.is(config.token, null);
  assert.is(config.logLevel, 'info');
  assert.equal([config.headersTimeoutMs, config.requestTimeoutMs], [10_000, 30_000]);
  // A quarter of the open-file limit (here, from /proc/self/limits).
  const limit = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))![1]);
  assert.is(config.maxWaitingConnections, Math.max(16, Math.floor(limit / 4)));
  assert.ok(Object.isFrozen(config));
  assert.throws(() => ((config as { port: number }).port = 1));
});

test('bad values are refused at start with the variable and the value in the message', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /PORT to be a whole number, got "eighty"/],
    [{ PORT: '70000' }, /PORT to be between 0 and 65535, got 70000/],
    [{ HUB_TOKEN: 'short' }, /HUB_TOKEN to be at least 16 printable/],
    [{ HUB_TOKEN: 'has spaces in it, sixteen+' }, /HUB_TOKEN/],
    [{ HUB_LOG_LEVEL: 'verbose' }, /HUB_LOG_LEVEL to be one of .*got "verbose"/],
    [{ HUB_MAX_LINE_BYTES: '8' }, /HUB_MAX_LINE_BYTES to be between 16/],
    [{ HUB_RETENTION_RUNS: '0' }, /HUB_RETENTION_RUNS to be between 1/],
    [{ HUB_RETENTION_DAYS: 'a week' }, /HUB_RETENTION_DAYS to be a whole number/],
    [{ HUB_HEADERS_TIMEOUT_MS: '20000', HUB_REQUEST_TIMEOUT_MS: '10000' }, /HUB_HEADERS_TIMEOUT_MS \(20000\) to be at most HUB_REQUEST_TIMEOUT_MS \(10000\)/],
    [{ HUB_MAX_WAITING_CONNECTIONS: '0' }, /HUB_MAX_WAITING_CONNECTIONS to be between 1/],
    [{ HUB_DATABASE_URL: 'postgres://db/hub', HUB_REDIS_URL: 'redis://cache', HUB_REDIS_CA_FILE: 'ca.crt' }, /HUB_REDIS_CA_FILE is for TLS: HUB_REDIS_URL must be a rediss:\/\/ URL/],
    [{ HUB_REDIS_CLUSTER_NODES: 'a:7000' }, /HUB_REDIS_CLUSTER_NODES needs HUB_REDIS_URL too/],
    [{ HUB_DATABASE_URL: 'postgres://db/hub', HUB_REDIS_URL: 'redis://a:7000', HUB_REDIS_CLUSTER_NODES: 'a:7000,b' }, /HUB_REDIS_CLUSTER_NODES to be host:port items separated by commas, got "b"/],
    [{ HUB_DATABASE_URL: 'postgres://db/hub', HUB_REDIS_URL: 'redis://a:7000', HUB_REDIS_CLUSTER_NODES: 'b:70000' }, /HUB_REDIS_CLUSTER_NODES.*got "b:70000"/],
  ];
  for (const [env, message] of cases) assert.throws(() => loadConfig(env, '/srv'), message, JSON.stringify(env));
});

test('retention limits: none by default; each set one is a positive whole number', () => {
  assert.equal(loadConfig({}, '/srv').retention, { runs: null, days: null, log_bytes: null });
  assert.equal(loadConfig({ HUB_RETENTION_RUNS: '50', HUB_RETENTION_LOG_BYTES: '1000000' }, '/srv').retention, { runs: 50, days: null, log_bytes: 1_000_000 });
});

test('lists are trimmed and lower-cased; relative paths resolve against the working directory', () => {
  const config = loadConfig({ HUB_ALLOWED_HOSTS: ' Hub.Example , other ', HUB_ALLOWED_ORIGINS: 'HTTP://X.example:3000/', HUB_DATA_DIR: 'd', HUB_PIPELINES: 'p.json' }, '/w');
  assert.equal(config.allowedHosts, ['hub.example', 'other']);
  assert.equal(config.allowedOrigins, ['http://x.example:3000']);
  assert.is(config.dbFile, '/w/d/hub.sqlite');
  assert.is(config.pipelinesFile, '/w/p.json');
  assert.is(loadConfig({ HUB_DATABASE_URL: 'postgres://db/hub', HUB_REDIS_URL: 'rediss://cache', HUB_REDIS_CA_FILE: 'tls/ca.crt' }, '/w').redisCaFile, '/w/tls/ca.crt');
});

test('a Redis Cluster: its seed nodes, host:port (IPv6 in brackets), none by default', () => {
  assert.is(loadConfig({}, '/srv').redisClusterNodes, null);
  const config = loadConfig({ HUB_DATABASE_URL: 'postgres://db/hub', HUB_REDIS_URL: 'redis://:pw@a:7000', HUB_REDIS_CLUSTER_NODES: ' b.internal:7001 , [::1]:7002,10.0.0.3:7003' }, '/srv');
  assert.equal(config.redisClusterNodes, [{ host: 'b.internal', port: 7001 }, { host: '::1', port: 7002 }, { host: '10.0.0.3', port: 7003 }]);
  assert.ok(Object.isFrozen(config.redisClusterNodes) && Object.isFrozen(config.redisClusterNodes![0]));
});

test.run();
