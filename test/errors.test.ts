import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errorBody, HubError, protocolError, toHubError } from '../server/errors.js';

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

test.run();
