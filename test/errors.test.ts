import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeValue, errorBody, HubError, protocolError, toHubError } from '../server/errors.js';

test('a busy database is 503 database_busy; Koa\'s 404 and 405 keep their status; anything else is 500', () => {
  const busy = toHubError(Object.assign(new Error('SQLITE_BUSY: database is locked'), { code: 'SQLITE_BUSY' }));
  assert.equal([busy.status, busy.code, busy.expose], [503, 'database_busy', true]);
  assert.equal([toHubError(Object.assign(new Error('gone'), { status: 404 })).code, toHubError(Object.assign(new Error('no'), { status: 405 })).code], ['not_found', 'method_not_allowed']);
  const internal = toHubError(new TypeError('x is undefined'));
  assert.equal([internal.status, internal.code, internal.expose], [500, 'internal', false]);
  assert.is(toHubError(null).status, 500);
  const ours = new HubError(409, 'run_active', 'busy');
  assert.is(toHubError(ours), ours);
});

test('a store past its deadline is 503, never 500: PostgreSQL (statement_timeout, a terminated connection, the pool or a read timing out) and Redis (a command timed out, reconnects used up, a connection closed, a cluster between masters)', () => {
  const pgErrors = [Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }), Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), new Error('timeout exceeded when trying to connect'), new Error('Query read timeout')];
  for (const error of pgErrors) assert.equal([toHubError(error).status, toHubError(error).code], [503, 'database_busy'], error.message);
  const redisErrors = [
    new Error('Command timed out'),
    Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }),
    // A Redis Cluster between masters (a failover), as ioredis reports it.
    Object.assign(new Error('CLUSTERDOWN The cluster is down'), { name: 'ReplyError' }),
    Object.assign(new Error('TRYAGAIN Multiple keys request during rehashing of slot'), { name: 'ReplyError' }),
    Object.assign(new Error('LOADING Redis is loading the dataset in memory'), { name: 'ReplyError' }),
    Object.assign(new Error("READONLY You can't write against a read only replica."), { name: 'ReplyError' }),
    new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'),
    new Error('Connection is closed.'),
    Object.assign(new Error('Failed to refresh slots cache.'), { name: 'ClusterAllFailedError' }),
  ];
  for (const error of redisErrors) assert.equal([toHubError(error).status, toHubError(error).code], [503, 'log_store_unavailable'], error.message);
});

test('a full disk (SQLITE_FULL, PostgreSQL 53100, ENOSPC) is 507 storage_full, and its message is shown', () => {
  for (const code of ['SQLITE_FULL', '53100', 'ENOSPC']) {
    const full = toHubError(Object.assign(new Error('database or disk is full'), { code }));
    assert.equal([full.status, full.code, full.expose], [507, 'storage_full', true], code);
  }
  assert.match(errorBody(toHubError(Object.assign(new Error('x'), { code: 'SQLITE_FULL' }))).message, 'disk is full');
});

test('one body for every client: code, message and details; an unexpected error\'s message is never shown', () => {
  assert.equal(errorBody(new HubError(400, 'invalid_field', 'Expected `name`', { details: { field: 'name' } })), { code: 'invalid_field', message: 'Expected `name`', field: 'name' });
  assert.equal(errorBody(toHubError(new Error('secret path /etc/x'))), { code: 'internal', message: 'Internal server error' });
  assert.equal(errorBody(protocolError('invalid_offset', 'past the end', { run_id: 7 })), { code: 'invalid_offset', message: 'past the end', run_id: 7 });
});

test('a value is described short and with its type, even one nested too deeply to render', () => {
  assert.is(describeValue('x'.repeat(100)), `"${'x'.repeat(76)}... (string)`);
  assert.is(describeValue(10n), '10 (bigint)');
  assert.is(describeValue(undefined), 'undefined (undefined)');
  const deep = JSON.parse(`${'['.repeat(500_000)}${']'.repeat(500_000)}`);
  assert.is(describeValue(deep), '[...] (array)');
  const deepObject = JSON.parse(`${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`);
  assert.match(describeValue(deepObject), /\(object\)$/);
});

test.run();
