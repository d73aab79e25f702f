import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startWorker, TEST_LEASE_MS, type ClusterWorker } from '../helpers/cluster.js';
import { createProject, startHub, waitFor, waitForRun, type TestHub } from '../helpers/hub.js';
import { createNetwork, whyNoNetworkNamespaces, whyNoPacketLoss, type Network } from '../helpers/netns.js';
import { pollFromZero } from '../helpers/httpPoller.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { LOCKED_STEP, watchRunProcesses } from '../helpers/runProcesses.js';
import { TestClient } from '../helpers/wsClient.js';
import { bytesOfLines } from '../soak/follower.js';

/** The cable is out this long: well past the lease, as a switch failure or a lost rack would be. */
const PARTITION_MS = 12_000;
const PIPELINES = { locked: { steps: [{ name: 'hold', command: ['sh', '-c', LOCKED_STEP] }], scopes: { all: 'hold' } } };

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const copyOf = (client: TestClient, runId: number) =>
  Buffer.concat(client.messages.filter((m) => m.type === 'lines' && m.run_id === runId).map((m) => bytesOfLines(m as { lines: string[] })));

/** PostgreSQL and Redis on this host, listening on the bridge too; the env for parts here and for parts on the machines. */
async function startServices(network: Network) {
  const postgres = await startPostgres({ network: { address: network.hostAddress, allow: network.cidr } });
  const redis = await startRedis({ listenAddress: network.hostAddress });
  const archive = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-archive-'));
  const env = { HUB_DATABASE_URL: await postgres.createDatabase(), HUB_REDIS_URL: redis.url, HUB_DEMO: '0', HUB_WORKER_TIMEOUT_MS: TEST_LEASE_MS, HUB_ARCHIVE_DIR: archive };
  const overTheNetwork = Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value.replace('127.0.0.1', network.hostAddress)]));
  return { postgres, redis, env, overTheNetwork };
}

const why = whyNoNetworkNamespaces();

/** A test that needs network namespaces: skipped, saying why, where there are none (not root). */
function networkTest(name: string, run: () => Promise<void>, whyNot = why): void {
  if (!whyNot) return test(name, run);
  console.log(`  skipped: "${name}": ${whyNot}`);
  test.skip(name, () => {});
}

const named = 'a worker cut off from the network (its cable pulled) for 12 s under a 5 s lease, mid-run: its steps stop before the lease expires, the run ends failed at the bytes it shipped, the queued run of its project runs on the other worker, never two at once; healed, the cut-off worker records nothing more; every follower gets each shipped byte once and one complete';

networkTest(named, async () => {
  let network: Network | undefined;
  let postgres: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let hub: TestHub | undefined;
  const workers: ClusterWorker[] = [];
  let watch: ReturnType<typeof watchRunProcesses> | undefined;
  try {
    // Worker w1 on a machine of its own; PostgreSQL, Redis, the hub and w2 on this host.
    network = createNetwork(1);
    const [machine] = network.machines;
    const services = await startServices(network);
    ({ postgres, redis } = services);
    const { env, overTheNetwork } = services;
    hub = await startHub({ pipelines: PIPELINES, env });
    workers.push(await startWorker(overTheNetwork, 'w1', undefined, machine.spawn));

    const projectId = await createProject(hub, 'locked');
    const docRoot = (await hub.api('GET', `/api/projects/${projectId}`)).body.doc_root as string;
    watch = watchRunProcesses(docRoot);
    const first = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const follower = await TestClient.connect(hub.url);
    follower.send({ type: 'subscribe', run_id: first.id, offset: 0 });
    await follower.waitFor((m) => m.type === 'lines' && m.run_id === first.id && m.lines!.some((line) => line.startsWith('tick 5 ')), 'the first run\'s step to tick over the network', 20_000);
    // The other worker comes only now, so the first run is w1's; the second waits behind it.
    workers.push(await startWorker(env, 'w2'));
    const second = (await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all', if_busy: 'queue' })).body;
    follower.send({ type: 'subscribe', run_id: second.id, offset: 0 });

    machine.partition();
    const cutAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, PARTITION_MS)); // the fault itself lasts this long
    machine.heal();
    const ended = await waitForRun(hub, projectId, first.id, ['failed', 'completed', 'cancelled'], 30_000);
    const done = await waitForRun(hub, projectId, second.id, ['completed', 'failed', 'cancelled'], 30_000);
    const completeFirst = await follower.complete(first.id, 30_000);
    const completeSecond = await follower.complete(second.id, 30_000);
    // w1 stopped the run itself when it could not renew (its log comes over a local pipe, not the network).
    await waitFor(() => workers[0].output().includes('lease on a run lost'), 'w1 to say it lost the lease', 20_000);
    watch.stop();

    const marks = fs.readFileSync(path.join(docRoot, 'marks'), 'utf8').trim().split('\n');
    const violations = fs.existsSync(path.join(docRoot, 'violations')) ? fs.readFileSync(path.join(docRoot, 'violations'), 'utf8') : '';
    assert.equal(watch.overlaps.slice(0, 3), [], 'no sample saw processes of both runs alive');
    assert.is(violations, '', 'no step found the lock held by a live step');
    assert.is(ended.status, 'failed', 'the cut-off run failed');
    assert.match(ended.error_message, /lease/);
    assert.not.ok(marks.includes(`end ${first.id}`), 'its step was stopped (it would have ticked 25 s)');
    assert.equal(marks.filter((mark) => mark.startsWith('start')), [`start ${first.id}`, `start ${second.id}`], 'each run\'s step started once, in order');
    assert.is(done.status, 'completed', `the queued run ran on w2 (${done.error_message})`);
    // Not before the first run was given up (its lease expired: up to a quarter lease after its last renewal, before the cut).
    assert.ok(Date.parse(done.started_at) >= Date.parse(ended.finished_at), `started ${done.started_at}, after the first ended ${ended.finished_at}`);

    // What every follower got: the bytes shipped, each once and in order (linesOf checks contiguity), then one complete.
    for (const [run, complete] of [[ended, completeFirst], [done, completeSecond]] as const) {
      follower.linesOf(run.id, 0);
      const raw = Buffer.from((await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
      const copy = copyOf(follower, run.id);
      assert.is(sha(copy), sha(raw), `run ${run.id}: the follower's copy is the log as served`);
      assert.is(complete.next, run.log_size, `run ${run.id}: complete at log_size`);
      assert.is(follower.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1, `run ${run.id}: one complete`);
    }
    // Healed, w1 wrote nothing more about the lost run: its record is as the hub left it.
    const after = (await hub.api('GET', `/api/projects/${projectId}/runs/${first.id}`)).body;
    assert.equal({ status: after.status, log_size: after.log_size, error_message: after.error_message }, { status: ended.status, log_size: ended.log_size, error_message: ended.error_message });
    const stopped = /"time":(\d+)[^\n]*lease on a run lost/.exec(workers[0].output());
    console.log(`  (w1 stopped the run's steps ${stopped ? Number(stopped[1]) - cutAt : '?'} ms after the cut; the hub gave it up ${Date.parse(ended.finished_at) - cutAt} ms after; the queued run started ${Date.parse(done.started_at) - cutAt} ms after; ${ended.log_size} bytes shipped before the cut reached the follower)`);
    await follower.close();
  } finally {
    watch?.stop();
    for (const worker of workers) worker.process.kill('SIGKILL');
    network?.machines.forEach((machine) => machine.heal());
    await hub?.stop();
    await redis?.stop();
    await postgres?.stop();
    network?.destroy();
  }
});

const hubNamed = 'a hub cut off from the network (its cable pulled) for 12 s under a 5 s lease while a run goes on: healed, it gives up no run whose worker kept renewing, and its follower and the other hub\'s each get every byte once, then one complete';

const TICKING = { ticking: { steps: [{ name: 'tick', command: ['sh', '-c', 'i=0; while [ $i -lt 200 ]; do echo "tick $i of run $HUB_RUN_ID"; sleep 0.1; i=$((i + 1)); done'] }], scopes: { all: 'tick' } } };

networkTest(hubNamed, async () => {
  let network: Network | undefined;
  let postgres: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  const hubs: TestHub[] = [];
  let worker: ClusterWorker | undefined;
  try {
    // Hub B on a machine of its own (listening on its address there); hub A, the worker and the servers on this host.
    network = createNetwork(1);
    const [machine] = network.machines;
    const services = await startServices(network);
    ({ postgres, redis } = services);
    const a = await startHub({ pipelines: TICKING, env: services.env });
    const b = await startHub({ pipelines: TICKING, env: { ...services.overTheNetwork, HOST: machine.address }, spawnOn: machine.spawn });
    hubs.push(a, b);
    worker = await startWorker(services.env, 'w1');
    const projectId = await createProject(a, 'ticking');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const [viaA, viaB] = [await TestClient.connect(a.url), await TestClient.connect(b.url)];
    for (const client of [viaA, viaB]) client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await viaB.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'hub B to pass on ticks', 20_000);

    machine.partition();
    await new Promise((resolve) => setTimeout(resolve, PARTITION_MS)); // the fault itself lasts this long
    machine.heal();
    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 60_000);
    assert.is(ended.status, 'completed', `the run went on (${ended.error_message})`);
    const raw = Buffer.from((await a.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    for (const [name, client] of [['A', viaA], ['B', viaB]] as const) {
      const complete = await client.complete(run.id, 60_000);
      client.linesOf(run.id, 0); // contiguous: no gap, no overlap
      assert.is(sha(copyOf(client, run.id)), sha(raw), `the follower on hub ${name} has the log`);
      assert.is(complete.next, raw.length);
      assert.is(client.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1, `one complete on hub ${name}`);
      await client.close();
    }
    assert.not.match(b.output(), /worker lost/, 'hub B gave nothing up');
  } finally {
    worker?.process.kill('SIGKILL');
    network?.machines.forEach((machine) => machine.heal());
    for (const hub of hubs) await hub.stop();
    await redis?.stop();
    await postgres?.stop();
    network?.destroy();
  }
});

const movedNamed = 'a hub cut off from the network mid-run: its follower gives it up and resumes on the other hub from its last next, and ends with every byte once and one complete';

networkTest(movedNamed, async () => {
  let network: Network | undefined;
  let postgres: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  const hubs: TestHub[] = [];
  let worker: ClusterWorker | undefined;
  try {
    network = createNetwork(1);
    const [machine] = network.machines;
    const services = await startServices(network);
    ({ postgres, redis } = services);
    const a = await startHub({ pipelines: TICKING, env: services.env });
    const b = await startHub({ pipelines: TICKING, env: { ...services.overTheNetwork, HOST: machine.address }, spawnOn: machine.spawn });
    hubs.push(a, b);
    worker = await startWorker(services.env, 'w1');
    const projectId = await createProject(a, 'ticking');
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const viaB = await TestClient.connect(b.url);
    viaB.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    await viaB.waitFor((m) => m.type === 'lines' && m.run_id === run.id && m.lines!.some((line) => line.startsWith('tick 10 ')), 'hub B to pass on ticks', 20_000);

    const cutAt = Date.now();
    machine.partition();
    // What a client does when its hub goes silent: drop the socket (no close handshake can cross
    // the cut) and resume on another hub from the last `next` it got.
    await waitFor(() => Date.now() - cutAt >= 2000, 'the client\'s silence timeout (2 s)', 5000);
    const before = viaB.linesOf(run.id, 0);
    viaB.socket.terminate();
    const viaA = await TestClient.connect(a.url);
    viaA.send({ type: 'subscribe', run_id: run.id, offset: before.next });
    const complete = await viaA.complete(run.id, 60_000);
    machine.heal();
    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 60_000);
    assert.is(ended.status, 'completed', `the run went on (${ended.error_message})`);
    const raw = Buffer.from((await a.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    viaA.linesOf(run.id, before.next); // contiguous from where hub B left off
    const copy = Buffer.concat([copyOf(viaB, run.id), copyOf(viaA, run.id)]);
    assert.is(sha(copy), sha(raw), 'the copy from hub B then hub A is the log');
    assert.is(complete.next, raw.length);
    assert.is(viaA.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1, 'one complete');
    console.log(`  (${before.next} bytes from hub B before the cut, ${raw.length - before.next} from hub A after; complete ${Date.now() - cutAt} ms after the cut)`);
    await viaA.close();
  } finally {
    worker?.process.kill('SIGKILL');
    network?.machines.forEach((machine) => machine.heal());
    for (const hub of hubs) await hub.stop();
    await redis?.stop();
    await postgres?.stop();
    network?.destroy();
  }
});

/** Of every packet in and out of the lossy machines, this share is dropped at random. */
const LOSS_PERCENT = 20;

const lossNamed = `a worker and a hub each on a machine losing ${LOSS_PERCENT}% of its packets both ways, for a whole run: the run completes once; WebSocket followers on both hubs and an HTTP poller through the lossy hub each get every byte once, then one complete`;

networkTest(lossNamed, async () => {
  let network: Network | undefined;
  let postgres: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  const hubs: TestHub[] = [];
  let worker: ClusterWorker | undefined;
  try {
    // The worker on m0, hub B on m1 (each talking to PostgreSQL and Redis over its lossy link); hub A on this host.
    network = createNetwork(2);
    const [workerMachine, hubMachine] = network.machines;
    const services = await startServices(network);
    ({ postgres, redis } = services);
    const a = await startHub({ pipelines: TICKING, env: services.env });
    const b = await startHub({ pipelines: TICKING, env: { ...services.overTheNetwork, HOST: hubMachine.address }, spawnOn: hubMachine.spawn });
    hubs.push(a, b);
    worker = await startWorker(services.overTheNetwork, 'w1', undefined, workerMachine.spawn);
    const projectId = await createProject(a, 'ticking');
    for (const machine of [workerMachine, hubMachine]) machine.lose(LOSS_PERCENT);
    const run = (await a.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' })).body;
    const [viaA, viaB] = [await TestClient.connect(a.url), await TestClient.connect(b.url)];
    for (const client of [viaA, viaB]) client.send({ type: 'subscribe', run_id: run.id, offset: 0 });
    const polled = pollFromZero(b, projectId, run.id);
    const ended = await waitForRun(a, projectId, run.id, ['completed', 'failed', 'cancelled'], 90_000);
    const completes = [await viaA.complete(run.id, 60_000), await viaB.complete(run.id, 60_000)];
    const poll = await polled;
    const dropped = [workerMachine, hubMachine].map((machine) => machine.dropped());
    for (const machine of [workerMachine, hubMachine]) machine.lose(0);

    assert.is(ended.status, 'completed', `the run went on through the loss (${ended.error_message})`);
    const raw = Buffer.from((await a.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/raw`)).body as string);
    assert.is(raw.toString().split('\n').filter((line) => line.startsWith('tick ')).length, 200, 'every tick in the log once');
    for (const [name, client, complete] of [['A', viaA, completes[0]], ['B', viaB, completes[1]]] as const) {
      client.linesOf(run.id, 0); // contiguous: no gap, no overlap
      assert.is(sha(copyOf(client, run.id)), sha(raw), `the follower on hub ${name} has the log`);
      assert.is(complete.next, raw.length);
      assert.is(client.messages.filter((m) => m.type === 'complete' && m.run_id === run.id).length, 1, `one complete on hub ${name}`);
      await client.close();
    }
    assert.is(sha(poll.bytes), sha(raw), 'the poller through hub B has the log');
    assert.ok(dropped.every((count) => count > 0), `packets were dropped on both machines (${dropped.join(', ')})`);
    console.log(`  (${dropped[0]} packets dropped on the worker's machine, ${dropped[1]} on hub B's; ${poll.failures} failed polls; the run took ${Date.parse(ended.finished_at) - Date.parse(ended.started_at)} ms for 20 s of ticks)`);
  } finally {
    worker?.process.kill('SIGKILL');
    network?.machines.forEach((machine) => machine.lose(0));
    for (const hub of hubs) await hub.stop();
    await redis?.stop();
    await postgres?.stop();
    network?.destroy();
  }
}, whyNoPacketLoss());

test.run();
