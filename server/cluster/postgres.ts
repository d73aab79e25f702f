import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { hasExited, killProcess, stopProcess } from './processes.js';
import { scramVerifier } from './scram.js';
import { readOrCreateSecret } from './secrets.js';
import { freePort, waitUntil, type LocalServer } from './services.js';

/** The superuser, used only by the launcher to set up roles and databases. */
const ADMIN_ROLE = 'hub_admin';
/** Hubs and workers: owns the schema `hub` of its database, and nothing else. */
export const APP_ROLE = 'hub';
const APP_SCHEMA = 'hub';

/** Debian's PostgreSQL binaries (apt-get install postgresql), newest version; null if none. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0], 'bin') : null;
}

const isRoot = () => process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user Debian's package made. */
const asServerUser = (command: string, args: string[]): [string, string[]] => (isRoot() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]);

/** A file the server reads (key, certificate, pg_hba.conf): its own, 0600. */
function writeServerFile(file: string, content: string | Buffer): void {
  fs.writeFileSync(file, content, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  if (isRoot()) execFileSync('chown', ['postgres', file]);
}

export interface LocalPostgres extends LocalServer {
  /** the superuser's connection (database `postgres`): for setting up; never handed to hubs or workers */
  admin: pg.ClientConfig;
  /** makes (or mends) database `name` for the role `hub` (see provisionDatabase) and answers its URL */
  createDatabase(name: string): Promise<string>;
  /** the server's last output (stderr, its log: up to 16 KiB), for a message when something failed */
  output(): string;
}

export interface LocalPostgresOptions {
  fsync?: boolean;
  /** where the password files go (postgres-admin.password, postgres.password); default `dir` */
  secretsDir?: string;
  /** TLS only (hostssl): the server's certificate and key, PEM files */
  tls?: { certFile: string; keyFile: string };
  /** also listen on `address` and let clients of `allow` (a CIDR) in, with the password; default loopback only */
  network?: { address: string; allow: string };
  /** the port (a restart keeps it); default a free one */
  port?: number;
}

/**
 * A PostgreSQL server on a free loopback port, its cluster in `dir/data`: scram-sha-256 for every
 * connection (no Unix socket, no trust), a superuser `hub_admin` and the role `hub` (no superuser,
 * createdb or createrole) owning the schema `hub` of database `hub`, each with a generated password.
 */
export async function startLocalPostgres(dir: string, options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install -y postgresql');
  const secretsDir = options.secretsDir ?? dir;
  fs.mkdirSync(dir, { recursive: true });
  // The postgres user must pass through to dir/data (which is its own, 0700).
  if (isRoot()) fs.chmodSync(dir, (fs.statSync(dir).mode & 0o7777) | 0o011);
  fs.mkdirSync(secretsDir, { recursive: true });
  const data = path.join(dir, 'data');
  const adminFile = path.join(secretsDir, 'postgres-admin.password');
  if (fs.existsSync(path.join(data, 'PG_VERSION')) && !fs.existsSync(adminFile)) {
    throw new Error(`${data} was made without a password (by an older launcher, with trust authentication and 'hub' as superuser), or ${adminFile} is gone: it is not started as it is. Move it aside (or delete it) and start again for a new, secured one (docs/cluster.md says how to copy its runs over)`);
  }
  const adminPassword = readOrCreateSecret(adminFile);
  const appPassword = readOrCreateSecret(path.join(secretsDir, 'postgres.password'));
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) initCluster(bin, dir, data, adminPassword);
  const hostType = options.tls ? 'hostssl' : 'host';
  const networkLine = options.network ? `${hostType} all all ${options.network.allow} scram-sha-256\n` : '';
  writeServerFile(path.join(data, 'pg_hba.conf'), `# written by the hub's launcher at each start: a password (scram-sha-256) for everyone, on loopback only unless told\n${hostType} all all 127.0.0.1/32 scram-sha-256\n${networkLine}`);
  const settings = [`listen_addresses=${['127.0.0.1', options.network?.address].filter(Boolean).join(',')}`, 'unix_socket_directories=', 'password_encryption=scram-sha-256', `fsync=${options.fsync === false ? 'off' : 'on'}`, 'max_connections=200'];
  if (options.tls) {
    writeServerFile(path.join(data, 'server.crt'), fs.readFileSync(options.tls.certFile));
    writeServerFile(path.join(data, 'server.key'), fs.readFileSync(options.tls.keyFile));
    settings.push('ssl=on', 'ssl_cert_file=server.crt', 'ssl_key_file=server.key');
  } else {
    settings.push('ssl=off');
  }
  const port = options.port ?? (await freePort());
  const [command, args] = asServerUser(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), ...settings.flatMap((setting) => ['-c', setting])]);
  // Its own process group: a Ctrl-C in the terminal reaches only the launcher, which stops PostgreSQL last.
  const server = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let output = '';
  server.stderr!.on('data', (chunk) => (output = (output + chunk).slice(-16_384)));
  // The launcher's own connection to a server it just started: TLS without verification is enough here.
  const admin: pg.ClientConfig = { host: '127.0.0.1', port, user: ADMIN_ROLE, password: adminPassword, database: 'postgres', ssl: options.tls ? { rejectUnauthorized: false } : false };
  try {
    await waitUntil(() => canConnect(admin), 'PostgreSQL', () => hasExited(server), () => output);
    await provisionDatabase(admin, APP_ROLE, appPassword);
  } catch (error) {
    await stopPostmaster();
    throw error;
  }
  async function stopPostmaster() {
    // The postmaster's own pid (runuser, when in between, does not pass signals on): fast shutdown.
    await stopProcess(server, { signal: 'SIGINT', pid: postmasterPid(data) ?? server.pid, graceMs: 15_000 });
  }
  const urlOf = (database: string) => `postgres://${APP_ROLE}:${appPassword}@127.0.0.1:${port}/${database}`;
  return {
    url: urlOf(APP_ROLE),
    admin,
    process: server,
    output: () => output,
    async createDatabase(name) {
      await provisionDatabase(admin, name, appPassword);
      return urlOf(name);
    },
    stop: stopPostmaster,
    // The postmaster by its pid too: SIGKILLing runuser alone would leave it running.
    kill: () => killProcess(server, { pid: postmasterPid(data), group: true }),
  };
}

/** The running postmaster's pid, from its lock file; undefined if there is none. */
function postmasterPid(data: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}

function initCluster(bin: string, dir: string, data: string, adminPassword: string): void {
  fs.mkdirSync(data, { mode: 0o700 });
  if (isRoot()) execFileSync('chown', ['postgres', data]);
  // initdb reads the password from a file (never argv, which every user sees in ps): one only it can read, removed at once.
  const pwDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-initdb-'));
  const pwFile = path.join(pwDir, 'password');
  try {
    fs.writeFileSync(pwFile, `${adminPassword}\n`, { mode: 0o600 });
    if (isRoot()) execFileSync('chown', ['-R', 'postgres', pwDir]);
    execFileSync(...asServerUser(path.join(bin, 'initdb'), ['-D', data, '-U', ADMIN_ROLE, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync']), { stdio: 'pipe' });
  } catch (error) {
    fs.rmSync(data, { recursive: true, force: true });
    const hint = isRoot() ? ` (it runs as the postgres user, which must be able to reach ${dir}: every folder above it needs o+x)` : '';
    throw new Error(`initdb failed${hint}: ${String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim()}`);
  } finally {
    fs.rmSync(pwDir, { recursive: true, force: true });
  }
}

async function canConnect(config: pg.ClientConfig): Promise<boolean> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function withClient<T>(config: pg.ClientConfig, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Makes (or mends) database `database` for the role `hub`: the role logs in with `password` and is
 * nothing more (no superuser, createdb, createrole, replication; its password is sent as a SCRAM
 * verifier, so the server never sees nor logs the text); in the database it may connect and
 * owns the schema `hub` (its search_path), where the migrations put every table; `public` takes no
 * new objects. Safe to run at every start.
 */
export async function provisionDatabase(admin: pg.ClientConfig, database: string, password: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new Error(`Expected a database name of lower-case letters, digits and _, got ${JSON.stringify(database)}`);
  await withClient(admin, async (client) => {
    const exists = async (sql: string, name: string) => (await client.query(sql, [name])).rowCount! > 0;
    if (!(await exists('SELECT 1 FROM pg_roles WHERE rolname = $1', APP_ROLE))) await client.query(`CREATE ROLE ${APP_ROLE}`);
    await client.query(`ALTER ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(scramVerifier(password))}`);
    await client.query(`ALTER ROLE ${APP_ROLE} SET search_path = ${APP_SCHEMA}`);
    if (!(await exists('SELECT 1 FROM pg_database WHERE datname = $1', database))) await client.query(`CREATE DATABASE ${database} OWNER ${ADMIN_ROLE}`);
    await client.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC`);
    await client.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${database} TO ${APP_ROLE}`);
  });
  await withClient({ ...admin, database }, async (client) => {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${APP_SCHEMA} AUTHORIZATION ${APP_ROLE}`);
    await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
  });
}
