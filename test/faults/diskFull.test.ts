import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LogClock, parseTimeRecord, TIME_RECORD_BYTES } from '../../pipeline-runner/logClock.js';
import { createProject, logFileOf, sh, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { fileGate } from '../helpers/fileGate.js';
import { TestClient } from '../helpers/wsClient.js';

// A step that ends only once this file exists: the test decides when its run ends.
const gate = fileGate();

const PIPELINES = {
  quick: { steps: [{ name: 'q', command: sh('echo hello; echo world') }], scopes: { all: 'q' } },
  // `yes` writes until its output is refused, then says why on stderr (the same full file) and exits 1.
  fill: { steps: [{ name: 'fill', command: sh("echo filling; yes 'fill the disk'") }], scopes: { all: 'fill' } },
  gated: { steps: [{ name: 'g', command: sh(`echo waiting; ${gate.waitCommand}; echo done`) }], scopes: { all: 'g' } },
};

const mounts: string[] = [];

/** A tmpfs of `size` at `dir` (root only); unmounted after the tests, whatever happens. */
function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}

/** Why these tests cannot run here, or null: they mount file systems, which needs root. */
function whyNoTmpfs(): string | null {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a small tmpfs needs root (the tests run as root in CI)';
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe]);
    return null;
  } catch (error) {
    return `mount -t tmpfs failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  } finally {
    fs.rmdirSync(probe);
  }
}

const skipReason = whyNoTmpfs();
const diskTest = (name: string, handler: () => Promise<void>) => {
  if (!skipReason) return test(name, handler);
  console.log(`  (skipped "${name}": ${skipReason})`);
  test.skip(name, handler);
};

test.after(() => {
  for (const dir of mounts.splice(0)) {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', dir]); // a process of a failed test still holds a file
    }
    fs.rmdirSync(dir);
  }
  gate.remove();
});

/** Writes to `file` until the file system refuses (ENOSPC); returns the bytes written. */
function fillDisk(file: string): number {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  let written = 0;
  try {
    for (;;) written += fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/** Queries the hub's SQLite file from a connection of the test's own. */
function queryDb<T>(file: string, sql: string): Promise<T> {
  const db = new sqlite3.Database(file);
  return new Promise<T>((resolve, reject) => db.get(sql, (error, row) => (error ? reject(error) : resolve(row as T)))).finally(() => new Promise((resolve) => db.close(resolve)));
}

const dbFileOf = (hub: TestHub) => path.join(hub.dir, 'data', 'hub.sqlite');

async function runToEnd(hub: TestHub, projectId: number) {
  const { status, body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  assert.is(status, 201, JSON.stringify(body));
  return waitForRun(hub, projectId, body.id, ['completed', 'failed', 'cancelled'], 20_000);
}

diskTest('a step that fills the disk of the logs fails its run saying "no space left on device"; the server serves on, other logs and the database are intact, and runs work once space is freed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-test-'));
  mountTmpfs(path.join(dir, 'logs'), '4m');
  const hub = await startHub({ pipelines: PIPELINES, dir });
  try {
    const other = await createProject(hub, 'quick');
    const done = await runToEnd(hub, other);
    assert.is(done.status, 'completed', done.error_message);
    // Its section index is finished after the run's end (it marks itself complete): waited for, so the files are final.
    const sections = await hub.api('GET', `/api/projects/${other}/runs/${done.id}/sections`);
    assert.is(sections.body.complete, true, JSON.stringify(sections.body));
    const otherFiles = fs.readdirSync(path.join(dir, 'logs', String(other))).map((name) => path.join(dir, 'logs', String(other), name));
    const before = new Map(otherFiles.map((file) => [file, fs.readFileSync(file)]));
    assert.ok(before.get(logFileOf(hub, other, done.id))!.includes('world\n'));

    const filler = await createProject(hub, 'fill');
    const full = await runToEnd(hub, filler);
    assert.is(full.status, 'failed');
    assert.ok(full.error_message.includes('no space left on device'), `the error says the disk is full: ${full.error_message}`);
    // The runner, which writes its steps' output (capture.ts), had its write refused: it stopped the
    // step, and wrote its final state in the old one's place.
    assert.is(full.error_message, 'The disk of the run\'s log is full (no space left on device): the runner could not write the log or its state during step "fill"');
    assert.is(fs.statfsSync(path.join(dir, 'logs')).bavail, 0, 'the disk is full');
    assert.equal(fs.readdirSync(path.join(dir, 'logs', String(filler))).filter((name) => name.endsWith('.tmp')), [], 'no half-written state file is left');
    // A run started while the disk is full cannot even write its state: it fails saying why, never stays running.
    const starved = await runToEnd(hub, other);
    assert.is(starved.status, 'failed');
    assert.ok(starved.error_message.includes('no space left on device'), `the error says the disk is full: ${starved.error_message}`);

    assert.is(hub.process.exitCode, null, 'the server is up');
    assert.is((await hub.api('GET', '/api/health')).status, 200);
    assert.is((await hub.api('GET', `/api/projects/${other}/runs/${done.id}`)).body.status, 'completed');
    const client = await TestClient.connect(hub.url);
    client.send({ type: 'subscribe', run_id: done.id, offset: 0 });
    assert.is((await client.complete(done.id, 10_000)).status, 'completed');
    assert.ok(client.linesOf(done.id, 0).lines.includes('world'));
    await client.close();
    for (const [file, bytes] of before) assert.ok(fs.readFileSync(file).equals(bytes), `${file} is unchanged`);
    assert.equal(await queryDb(dbFileOf(hub), 'PRAGMA integrity_check'), { integrity_check: 'ok' });

    // Space freed the way a user would: the failed run and its log are purged.
    assert.is((await hub.api('DELETE', `/api/projects/${filler}/runs/${full.id}?purge=true`)).status, 204);
    const again = await runToEnd(hub, other);
    assert.is(again.status, 'completed', again.error_message);
    assert.match(fs.readFileSync(logFileOf(hub, other, again.id), 'utf8'), 'hello\nworld\n');
  } finally {
    await hub.stop();
  }
});

diskTest('the runner\'s times file on a full disk keeps whole records only, and goes on in step once there is space again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-times-'));
  mountTmpfs(path.join(dir, 'full'), '64k');
  const logFile = path.join(dir, 'run.log'); // the log itself is elsewhere, so it can grow
  const timesFile = path.join(dir, 'full', 'run.times');
  const logFd = fs.openSync(logFile, 'a');
  const clock = new LogClock(logFd, timesFile);
  try {
    const grow = () => {
      fs.writeSync(logFd, 'x\n');
      clock.sample();
    };
    grow();
    const filler = path.join(dir, 'full', 'filler');
    fillDisk(filler);
    // The times file's one block takes 136 records; the 137th would be cut short.
    for (let i = 0; i < 200; i++) grow();
    const size = fs.statSync(timesFile).size;
    assert.is(size % TIME_RECORD_BYTES, 0, `whole records only (${size} bytes)`);
    fs.rmSync(filler);
    grow();
    const bytes = fs.readFileSync(timesFile);
    assert.is(bytes.length, size + TIME_RECORD_BYTES);
    assert.is(parseTimeRecord(bytes, size)?.size, fs.fstatSync(logFd).size, 'the next record is whole and in step');
  } finally {
    clock.stop();
    fs.closeSync(logFd);
  }
});

diskTest('a full database disk (SQLITE_FULL): writes answer 507 storage_full, reads go on, a run ending meanwhile is recorded once space is freed, and writes work again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-test-'));
  mountTmpfs(path.join(dir, 'data'), '4m');
  const hub = await startHub({ pipelines: PIPELINES, dir });
  try {
    const projectId = await createProject(hub, 'quick');
    const done = await runToEnd(hub, projectId);
    assert.is(done.status, 'completed', done.error_message);
    const gated = await createProject(hub, 'gated');
    const running = (await hub.api('POST', `/api/projects/${gated}/runs`, { scope: 'all' })).body.id;
    await waitFor(async () => (await hub.api('GET', `/api/projects/${gated}/runs/${running}`)).body.current_step === 'g', 'the step to be recorded');

    // The write-ahead log emptied (so no write finds room left in it), then the disk filled.
    const checkpoint = await queryDb<{ busy: number }>(dbFileOf(hub), 'PRAGMA wal_checkpoint(TRUNCATE)');
    assert.is(checkpoint.busy, 0, 'the checkpoint truncated the WAL');
    const fillerFile = path.join(dir, 'data', 'filler');
    fillDisk(fillerFile);

    const refused = await hub.api('POST', '/api/projects', { name: 'while-full', doc_root: fs.mkdtempSync(path.join(dir, 'docs-')), pipeline: 'quick', settings: { llm_model: 'test-model' } });
    assert.is(refused.status, 507, JSON.stringify(refused.body));
    assert.is(refused.body.error.code, 'storage_full');
    assert.match(refused.body.error.message, /full/);
    const start = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
    assert.is(start.status, 507, JSON.stringify(start.body));
    assert.is(start.body.error.code, 'storage_full');

    // The run ends while its end cannot be written: it stays running until it can.
    gate.open();
    await waitFor(() => hub.output().includes('recording the end of a run failed; trying again'), 'a refused attempt to record the end', 20_000);
    assert.is((await hub.api('GET', `/api/projects/${gated}/runs/${running}`)).body.status, 'running');

    assert.is(hub.process.exitCode, null, 'the server is up');
    assert.is((await hub.api('GET', '/api/health')).status, 200);
    const list = await hub.api('GET', `/api/projects/${projectId}/runs`);
    assert.is(list.status, 200);
    assert.ok(list.body.some((run: { id: number }) => run.id === done.id));

    fs.rmSync(fillerFile);
    const ended = await waitForRun(hub, gated, running, ['completed', 'failed'], 20_000);
    assert.is(ended.status, 'completed', ended.error_message);
    const created = await hub.api('POST', '/api/projects', { name: 'after-full', doc_root: fs.mkdtempSync(path.join(dir, 'docs-')), pipeline: 'quick', settings: { llm_model: 'test-model' } });
    assert.is(created.status, 201, JSON.stringify(created.body));
    const again = await runToEnd(hub, created.body.id);
    assert.is(again.status, 'completed', again.error_message);
    assert.equal(await queryDb(dbFileOf(hub), 'PRAGMA integrity_check'), { integrity_check: 'ok' });
  } finally {
    await hub.stop();
  }
});

test.run();
