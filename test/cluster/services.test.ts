import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startLocalPostgres } from '../../server/cluster/postgres.js';
import { startLocalRedis } from '../../server/cluster/redis.js';
import { waitFor } from '../helpers/hub.js';

/** Every server the launcher starts, in one temp folder laid out as HUB_DATA_DIR/cluster/. */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-cluster-'));
fs.chmodSync(root, 0o711); // as a data folder usually is: the postgres user passes through to its cluster
const postgres = await startLocalPostgres(path.join(root, 'postgres'), { secretsDir: root, fsync: false });
const redis = await startLocalRedis(path.join(root, 'redis'), { secretsDir: root });
const pgPort = String(new URL(postgres.url).port);
const redisPort = String(new URL(redis.url).port);
const password = (name: string) => fs.readFileSync(path.join(root, `${name}.password`), 'utf8').trim();

/** A command as another local user (`nobody`), with none of our environment (no PGPASSWORD, no REDISCLI_AUTH). */
function asNobody(command: string[], env: Record<string, string> = {}): { status: number | null; output: string } {
  const result = spawnSync('runuser', ['-u', 'nobody', '--', ...command], { cwd: '/', env: { PATH: process.env.PATH!, HOME: '/nonexistent', ...env }, encoding: 'utf8', timeout: 15_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Why the tests running commands as another user cannot run here, or null. */
const skipReason = process.getuid?.() === 0 ? null : 'running commands as the user nobody needs root (the tests run as root in CI)';
const asNobodyTest = (name: string, handler: () => void) => {
  if (!skipReason) return test(name, handler);
  console.log(`  (skipped "${name}": ${skipReason})`);
  test.skip(name, handler);
};

asNobodyTest('another local user without the password gets into neither PostgreSQL (as hub or hub_admin) nor Redis', () => {
  for (const role of ['hub', 'hub_admin', 'postgres']) {
    const psql = asNobody(['psql', '-w', '-h', '127.0.0.1', '-p', pgPort, '-U', role, '-d', 'hub', '-c', "COPY (SELECT 1) TO PROGRAM 'id'"]);
    assert.is.not(psql.status, 0, `psql as ${role} got in: ${psql.output}`);
    assert.match(psql.output, /password|authentication/i);
  }
  const ping = asNobody(['redis-cli', '-h', '127.0.0.1', '-p', redisPort, 'ping']);
  assert.not.match(ping.output, /PONG/, `redis-cli got in: ${ping.output}`);
  assert.match(ping.output, /NOAUTH/);
  // The same commands with the password do get in: the refusals above are for the password, not for anything else.
  assert.match(asNobody(['redis-cli', '-h', '127.0.0.1', '-p', redisPort, 'ping'], { REDISCLI_AUTH: password('redis') }).output, /PONG/);
  const withPassword = asNobody(['psql', '-w', '-h', '127.0.0.1', '-p', pgPort, '-U', 'hub', '-d', 'hub', '-Atc', 'SELECT current_user'], { PGPASSWORD: password('postgres') });
  assert.is(withPassword.output.trim(), 'hub', withPassword.output);
});

test("the hubs' role is no superuser: COPY ... FROM PROGRAM, new roles and databases, and tables outside its schema are refused", async () => {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    const role = (await client.query('SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user')).rows[0];
    assert.equal(role, { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false });
    assert.is((await client.query('SELECT current_schema() AS schema')).rows[0].schema, 'hub');
    await client.query('CREATE TABLE o (line TEXT)'); // in its own schema: allowed
    for (const sql of ["COPY o FROM PROGRAM 'id'", "COPY o TO PROGRAM 'id'", "COPY o FROM '/etc/shadow'", 'CREATE ROLE intruder SUPERUSER', 'CREATE DATABASE other', 'CREATE TABLE public.o (line TEXT)', 'ALTER ROLE hub SUPERUSER']) {
      const refused = await client.query(sql).then(() => null, (error: Error) => error.message);
      assert.ok(refused, `${sql} was allowed`);
      assert.match(refused!, /permission denied|must be superuser|privileges/i, sql);
    }
  } finally {
    await client.end();
  }
});

test('the passwords are in files of mode 0600, and on no command line any user can read in /proc/*/cmdline', () => {
  const secrets = ['postgres-admin', 'postgres', 'redis'].map((name) => path.join(root, `${name}.password`));
  for (const file of [...secrets, path.join(root, 'redis', 'redis.conf')]) assert.is((fs.statSync(file).mode & 0o777).toString(8), '600', file);
  const passwords = secrets.map((file) => fs.readFileSync(file, 'utf8').trim());
  assert.ok(passwords.every((secret) => secret.length >= 32) && new Set(passwords).size === 3);
  let seen = 0;
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (cmdline.includes('redis-server') || cmdline.includes('postgres')) seen++;
    for (const secret of passwords) assert.not.ok(cmdline.includes(secret), `process ${pid} has a password in its arguments: ${cmdline.replaceAll('\0', ' ')}`);
  }
  assert.ok(seen >= 2, 'the servers were not found in /proc');
});

test("the hubs' password reaches PostgreSQL only as a SCRAM verifier: with every statement logged, the password is in none of its output; the role logs in with it", async () => {
  const admin = new pg.Client(postgres.admin);
  await admin.connect();
  try {
    await admin.query("ALTER SYSTEM SET log_statement = 'all'");
    await admin.query('SELECT pg_reload_conf()');
    await postgres.createDatabase('logged'); // sets the role's password again
    await waitFor(() => /ALTER ROLE hub/.test(postgres.output()), 'PostgreSQL to log the ALTER ROLE', 5000);
    assert.not.ok(postgres.output().includes(password('postgres')), 'the password is in the server\'s output');
    assert.match(postgres.output(), /PASSWORD 'SCRAM-SHA-256\$4096:/);
    const stored = (await admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'hub'")).rows[0].rolpassword as string;
    assert.match(stored, /^SCRAM-SHA-256\$4096:/);
  } finally {
    await admin.query('ALTER SYSTEM RESET log_statement');
    await admin.query('SELECT pg_reload_conf()');
    await admin.end();
  }
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    assert.is((await client.query('SELECT current_user AS name')).rows[0].name, 'hub');
  } finally {
    await client.end();
  }
});

test('a PostgreSQL cluster made without a password (the old launcher: trust, hub as superuser) is refused with what to do, not started', async () => {
  const old = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-old-cluster-'));
  try {
    fs.mkdirSync(path.join(old, 'postgres', 'data'), { recursive: true });
    fs.writeFileSync(path.join(old, 'postgres', 'data', 'PG_VERSION'), '15\n');
    const error = await startLocalPostgres(path.join(old, 'postgres'), { secretsDir: old }).then(() => null, (caught: Error) => caught);
    assert.ok(error, 'it started');
    assert.match(error!.message, /without a password/);
    assert.match(error!.message, /Move it aside/);
    assert.not.ok(fs.existsSync(path.join(old, 'postgres.password')), 'it made a password for a cluster it does not start');
  } finally {
    fs.rmSync(old, { recursive: true, force: true });
  }
});

test.after(async () => {
  await redis.stop();
  await postgres.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
