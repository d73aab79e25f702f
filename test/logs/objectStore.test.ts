import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import S3rver from 's3rver';
import { DirectoryObjectStore, type ObjectStore } from '../../server/logs/archive.js';
import { LocalLogSource } from '../../server/logs/logSource.js';
import { readLogPage } from '../../server/logs/pageReader.js';
import { S3ObjectStore } from '../../server/logs/s3ObjectStore.js';
import { freePort } from '../helpers/postgres.js';

/** What every archive store must do: whole objects, ranged reads equal to the file, missing is null. */
function objectStoreContract(name: string, make: () => Promise<{ store: ObjectStore; done: () => Promise<void> }>): void {
  const contract = suite<{ store: ObjectStore; done: () => Promise<void> }>(`object store contract: ${name}`);
  contract.before(async (context) => void Object.assign(context, await make()));
  contract.after(({ done }) => done());

  const logFile = () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-object-')), 'run.log');
    fs.writeFileSync(file, Array.from({ length: 4000 }, (_, i) => `archived line ${i} é日😀`).join('\n') + '\nno newline at the end');
    return file;
  };

  contract('a stored log reads back byte for byte at any range, and pages from it equal pages from the file', async ({ store }) => {
    const file = logFile();
    const bytes = fs.readFileSync(file);
    await store.put('3/14.log', file);
    const handle = (await store.open('3/14.log'))!;
    assert.is((await handle.stat()).size, bytes.length);
    for (const [position, length] of [[0, 10], [1, bytes.length - 1], [bytes.length - 7, 100], [65_000, 70_000]]) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      assert.ok(buffer.subarray(0, bytesRead).equals(bytes.subarray(position, position + length)), `${position}+${length}`);
    }
    await handle.close();
    const fromStore = { open: () => store.open('3/14.log'), isReplaced: async () => false, watch: () => () => {}, openTimes: async () => null };
    const options = { maxLineBytes: 64, finished: true, recordedSize: bytes.length };
    for (const startAt of [{ tail: 100 }, { offset: 0 }]) {
      assert.equal(await readLogPage(fromStore, options, startAt), await readLogPage(new LocalLogSource(file), options, startAt));
    }
  });

  contract('bytes stored from memory read back whole, and storing again replaces them', async ({ store }) => {
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => `chunk line ${i} é日😀\n`).join(''));
    await store.putBytes('4/15.chunks/0', bytes);
    await store.putBytes('4/15.chunks/0', bytes); // a retry after a lost answer
    const handle = (await store.open('4/15.chunks/0'))!;
    assert.is((await handle.stat()).size, bytes.length);
    const back = Buffer.alloc(bytes.length);
    assert.is((await handle.read(back, 0, bytes.length, 0)).bytesRead, bytes.length);
    assert.ok(back.equals(bytes));
    await handle.close();
    await store.delete('4/15.chunks/0');
  });

  contract('a key not stored opens as null; a deleted one too', async ({ store }) => {
    assert.is(await store.open('9/99.log'), null);
    await store.put('9/98.log', logFile());
    const stored = await store.open('9/98.log');
    assert.ok(stored);
    await stored!.close();
    await store.delete('9/98.log');
    assert.is(await store.open('9/98.log'), null);
    await store.delete('9/98.log'); // twice: nothing
  });

  contract.run();
}

objectStoreContract('directory', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-archive-'));
  return { store: new DirectoryObjectStore(dir), done: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

// A local S3-compatible server from the npm registry (s3rver), spoken to by the AWS SDK.
objectStoreContract('S3 (s3rver)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-s3-'));
  const port = await freePort();
  const server = new S3rver({ port, address: '127.0.0.1', directory: dir, silent: true, configureBuckets: [{ name: 'hub-logs', configs: [] }] });
  await server.run();
  const store = S3ObjectStore.fromUrl('s3://hub-logs/archive', {
    endpoint: `http://127.0.0.1:${port}`,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return {
    store,
    done: async () => {
      store.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

// An S3 endpoint that takes the connection and never answers (a frozen or cut-off server).
const silent = suite('S3 deadlines');
silent('a request to an S3 server that never answers fails after its tries, each with a deadline, instead of waiting for ever', async () => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const store = S3ObjectStore.fromUrl('s3://hub-logs/archive', { endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }, 300);
  try {
    const started = Date.now();
    const outcome = await Promise.race([store.open('1/1.log').then(() => 'answered', (error: Error) => `failed: ${error.name}`), new Promise((resolve) => setTimeout(resolve, 10_000, 'still waiting after 10 s'))]);
    console.log(`a silent S3 server: ${String(outcome)} after ${Date.now() - started} ms, ${sockets.size} connections (deadline 300 ms a try)`);
    assert.match(String(outcome), /^failed/);
    assert.ok(sockets.size >= 2, `tried again (${sockets.size} connections)`);
    assert.ok(Date.now() - started < 5000, `within its tries' deadlines (${Date.now() - started} ms)`);
    const checked = await withTimeoutCheck(store.check()).then(() => 'ready', (error: Error) => error.message);
    assert.ok(checked !== 'ready' && checked !== 'no answer in 10 s', `the readiness check fails too (${checked})`);
  } finally {
    store.close();
    for (const socket of sockets) socket.destroy();
    server.close();
  }
});
silent.run();

const withTimeoutCheck = (promise: Promise<void>) => Promise.race([promise, new Promise<void>((_resolve, reject) => setTimeout(() => reject(new Error('no answer in 10 s')), 10_000))]);

// A large log goes up in parts through a proxy in front of s3rver that counts the requests and
// fails one part's first tries (a flaky network): the object is whole, its parts were retried.
const parts = suite('S3 multipart uploads');
parts('a log over the multipart size goes up in parts, a part that fails is sent again, and the object reads back whole', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-s3-'));
  const s3Port = await freePort();
  const server = new S3rver({ port: s3Port, address: '127.0.0.1', directory: dir, silent: true, configureBuckets: [{ name: 'hub-logs', configs: [] }] });
  await server.run();
  const seen = { parts: 0, failed: 0, puts: 0, completed: 0 };
  const proxy = http.createServer((request, response) => {
    const url = new URL(request.url!, 'http://proxy');
    const isPart = request.method === 'PUT' && url.searchParams.has('uploadId');
    if (isPart) seen.parts++;
    else if (request.method === 'PUT') seen.puts++;
    if (request.method === 'POST' && url.searchParams.has('uploadId')) seen.completed++;
    // Part 2's first four tries fail: more than the SDK's own 3 attempts, so the upload's loop must retry.
    if (isPart && url.searchParams.get('partNumber') === '2' && seen.failed < 4) {
      seen.failed++;
      request.resume();
      request.on('end', () => response.writeHead(500, { 'content-type': 'application/xml' }).end('<Error><Code>InternalError</Code><Message>injected</Message></Error>'));
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: s3Port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as net.AddressInfo;
  const store = S3ObjectStore.fromUrl('s3://hub-logs/archive', { endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }, 30_000, { multipartBytes: 6 * 1024 * 1024, partBytes: 5 * 1024 * 1024 });
  try {
    const file = path.join(dir, 'big.log');
    const line = (i: number) => `line ${i} of a large log é日😀\n`;
    fs.writeFileSync(file, Array.from({ length: 420_000 }, (_, i) => line(i)).join(''));
    const bytes = fs.readFileSync(file);
    await store.put('1/7.log', file);
    console.log(`a ${bytes.length} byte log: ${seen.parts} part requests (${seen.failed} failed on purpose), ${seen.puts} single PUTs, ${seen.completed} completion`);
    assert.is(seen.puts, 0, 'not sent as one PUT');
    assert.is(seen.completed, 1);
    assert.is(seen.parts, Math.ceil(bytes.length / (5 * 1024 * 1024)) + seen.failed, 'each part once, plus the failed tries');
    const handle = (await store.open('1/7.log'))!;
    assert.is((await handle.stat()).size, bytes.length);
    const back = Buffer.alloc(bytes.length);
    assert.is((await handle.read(back, 0, bytes.length, 0)).bytesRead, bytes.length);
    assert.ok(back.equals(bytes), 'the object is the file, byte for byte');
  } finally {
    store.close();
    proxy.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
parts.run();
