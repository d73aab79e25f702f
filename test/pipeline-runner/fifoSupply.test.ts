import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BATCH, FifoSupply, type PipeEnds } from '../../pipeline-runner/fifoSupply.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

/** O_CLOEXEC in /proc/self/fdinfo's octal flags: a step gets only the end it is given. */
const O_CLOEXEC = 0o2000000;
const flagsOf = (fd: number) => Number.parseInt(/flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);

test('pipes are made ahead in batches, each new, open, gone from disk and closed on exec; close() ends the supply', async () => {
  const supply = new FifoSupply();
  const taken: PipeEnds[] = [];
  try {
    for (let i = 0; i < BATCH + 2; i++) taken.push((await supply.take())!); // more than one batch
    assert.is(new Set(taken.flatMap(({ readFd, writeFd }) => [readFd, writeFd])).size, 2 * (BATCH + 2), 'each pipe is new');
    for (const { readFd, writeFd } of taken) {
      assert.ok(fs.fstatSync(readFd).isFIFO() && fs.fstatSync(writeFd).isFIFO());
      assert.match(fs.readlinkSync(`/proc/self/fd/${writeFd}`), / \(deleted\)$/, 'its name is gone: nothing else can open it, nothing is left on disk');
      assert.ok((flagsOf(readFd) & O_CLOEXEC) !== 0 && (flagsOf(writeFd) & O_CLOEXEC) !== 0, 'closed on exec');
      fs.writeSync(writeFd, 'through');
      const read = Buffer.alloc(16);
      assert.is(read.toString('utf8', 0, fs.readSync(readFd, read)), 'through');
    }
    await supply.close();
    await supply.close(); // twice is fine
    assert.is(await supply.take(), undefined, 'none once closed: a capture makes its own');
  } finally {
    await supply.close();
    for (const { readFd, writeFd } of taken) for (const fd of [readFd, writeFd]) fs.closeSync(fd);
  }
});

test('a runner started ahead and ended before its run (its stdin closed) leaves no FIFO on disk', async () => {
  const runner = new URL('../../pipeline-runner/runner.js', import.meta.url).pathname;
  const before = new Set(fs.readdirSync(os.tmpdir()));
  for (let i = 0; i < 5; i++) {
    const child = spawn(process.execPath, [runner], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve)); // ready: its first batch is on its way
      child.stdin.end();
      const code = await Promise.race([once(child, 'exit').then(([exitCode]) => exitCode as number), new Promise((resolve) => setTimeout(resolve, 10_000, 'timeout'))]);
      assert.is(code, 0);
    } finally {
      child.kill('SIGKILL');
    }
  }
  const fifos = fs.readdirSync(os.tmpdir()).filter((name) => !before.has(name) && name.startsWith('hub-capture-'))
    .flatMap((name) => fs.readdirSync(path.join(os.tmpdir(), name), { withFileTypes: true }).filter((entry) => entry.isFIFO() && /^\d+$/.test(entry.name)));
  assert.equal(fifos, [], 'no FIFO made ahead outlives its runner');
});

test.run();
