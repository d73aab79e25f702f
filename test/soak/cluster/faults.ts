import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startWorker, type Cluster, type ClusterWorker } from '../../helpers/cluster.js';
import { startHub } from '../../helpers/hub.js';

/** How long a frozen process stays frozen: longer than the lease (the soak's HUB_WORKER_TIMEOUT_MS). */
export const FREEZE_MS = 7000;

export const FAULT_KINDS = [
  'hub SIGKILL', 'hub drained (SIGTERM)', 'worker SIGKILL (runners live on)', 'worker machine lost (with its runners)', 'worker SIGSTOP',
  'PostgreSQL SIGSTOP', 'PostgreSQL backends terminated', 'Redis SIGSTOP', 'Redis restarted', 'Redis restarted empty',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ends every client connection to PostgreSQL (a failover, a network blip); answers how many. */
async function terminateAllBackends(admin: pg.ClientConfig): Promise<number> {
  const client = new pg.Client({ ...admin, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: number }>("SELECT count(pg_terminate_backend(pid))::int AS count FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'");
    return rows[0].count;
  } finally {
    await client.end();
  }
}

/** Every process of one worker's machine (the worker, its runners and their steps): they carry its SOAK_MACHINE. */
const machineProcesses = (machine: string) => processesWithEnv(`SOAK_MACHINE=${machine}`);

/** Pids whose environment holds `variable` (`NAME=value`). */
function processesWithEnv(variable: string): number[] {
  const needle = `\0${variable}\0`;
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (`\0${fs.readFileSync(`/proc/${entry}/environ`, 'latin1')}`.includes(needle)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const exited = (worker: ClusterWorker) => worker.process.exitCode !== null || worker.process.signalCode !== null ? Promise.resolve() : new Promise((resolve) => worker.process.once('exit', resolve));

/**
 * The faults of the soak, on a live cluster whose `hubs` and `workers` arrays it replaces members of
 * (a restarted hub is a new process on a new port). Each fault returns once the cluster is whole
 * again (the part restarted or resumed); `frozen` is what to resume if the soak must stop midway.
 */
export class ClusterFaults {
  /** processes stopped right now, to SIGCONT on the way out */
  readonly frozen = new Set<() => void>();
  private machines = 0;
  /** each start of a part, numbered (SOAK_START), so that a start that failed can be ended */
  private starts = 0;
  /** each worker's folder and machine name, by its id */
  readonly workerDirs = new Map<string, string>();
  readonly allWorkerDirs: string[] = [];
  /** every part started, with its output: kept as evidence when the soak finds a mismatch */
  readonly started: { name: string; output: () => string }[] = [];
  /** the folders of workers whose machine was lost, and when */
  readonly lostMachines = new Map<string, number>();
  /** when Redis was restarted empty */
  readonly redisEmptied: number[] = [];
  /** parts that did not start at the first attempt */
  readonly startFailures: string[] = [];

  constructor(private readonly cluster: Cluster, private readonly pipelines: Record<string, unknown>, private readonly mark: string, private readonly rnd: () => number) {}

  /** A new worker on a machine of its own (folder and SOAK_MACHINE); `id`, `dir`: the same one started again. */
  async startWorker(id = `m${++this.machines}`, dir = fs.mkdtempSync(path.join(os.tmpdir(), `hub-csoak-worker-${id}-`))): Promise<ClusterWorker> {
    this.workerDirs.set(id, dir);
    if (!this.allWorkerDirs.includes(dir)) this.allWorkerDirs.push(dir);
    // (SOAK_START names this try: a start that failed is ended, with any runner it began, as a lost machine's)
    const worker = await this.again(`worker ${id}`, () => startWorker({ ...this.cluster.env, SOAK_MARK: this.mark, SOAK_MACHINE: id, SOAK_START: String(++this.starts) }, id, dir), () => `SOAK_START=${this.starts}`);
    this.cluster.workers.push(worker);
    this.started.push({ name: `worker-${id}-${this.starts}`, output: worker.output });
    return worker;
  }

  async inject(kind: FaultKind): Promise<string> {
    const began = Date.now();
    const detail = await this.injectOnly(kind);
    return `${detail}; whole again after ${Date.now() - began} ms`;
  }

  private async injectOnly(kind: FaultKind): Promise<string> {
    const { cluster } = this;
    const index = (length: number) => Math.floor(this.rnd() * length);
    switch (kind) {
      case 'hub SIGKILL':
      case 'hub drained (SIGTERM)': {
        const at = index(cluster.hubs.length);
        const hub = cluster.hubs[at];
        await hub.stop(kind === 'hub SIGKILL' ? 'SIGKILL' : 'SIGTERM');
        cluster.hubs[at] = await this.again('a hub', () => startHub({ pipelines: this.pipelines, env: { ...cluster.env, SOAK_MARK: this.mark, SOAK_START: String(++this.starts) } }), () => `SOAK_START=${this.starts}`);
        this.started.push({ name: `hub-${this.starts}`, output: cluster.hubs[at].output });
        return `${hub.url} → ${cluster.hubs[at].url}`;
      }
      case 'worker SIGKILL (runners live on)':
      case 'worker machine lost (with its runners)': {
        const worker = cluster.workers.splice(index(cluster.workers.length), 1)[0];
        const lost = kind === 'worker machine lost (with its runners)';
        const pids = lost ? machineProcesses(worker.id) : [worker.process.pid!];
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        await exited(worker);
        if (lost) this.lostMachines.set(this.workerDirs.get(worker.id)!, Date.now());
        // The same machine back at once (its runners re-attached), or a new machine in place of the lost one.
        if (lost) await this.startWorker();
        else await this.startWorker(worker.id, this.workerDirs.get(worker.id));
        return `${worker.id} (${pids.length} processes)`;
      }
      case 'worker SIGSTOP': {
        const worker = cluster.workers[index(cluster.workers.length)];
        await this.freeze((signal) => worker.process.kill(signal));
        return worker.id;
      }
      case 'PostgreSQL SIGSTOP':
        await this.freeze((signal) => cluster.postgres.signal(signal));
        return `${FREEZE_MS} ms`;
      case 'Redis SIGSTOP':
        await this.freeze((signal) => cluster.redis.signal(signal));
        return `${FREEZE_MS} ms`;
      case 'PostgreSQL backends terminated':
        return `${await terminateAllBackends(cluster.postgres.admin)} connections`;
      case 'Redis restarted':
        await cluster.redis.restart();
        return 'with its data';
      case 'Redis restarted empty':
        this.redisEmptied.push(Date.now());
        await cluster.redis.restart({ empty: true });
        return 'data deleted';
    }
  }

  /**
   * Starts a part again, up to three times: on a loaded machine a start can outlast the helpers'
   * 15 s (each failure is kept, with the part's output, and reported).
   */
  private async again<T>(what: string, start: () => Promise<T>, startMark: () => string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (error) {
        // The one that was too slow may still be starting: it goes first.
        for (const pid of processesWithEnv(startMark())) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        this.startFailures.push(`${what} did not start (attempt ${attempt}): ${(error as Error).message.slice(0, 400)}`);
        if (attempt === 3) throw error;
      }
    }
  }

  private async freeze(send: (signal: NodeJS.Signals) => void): Promise<void> {
    const resume = () => send('SIGCONT');
    send('SIGSTOP');
    this.frozen.add(resume);
    try {
      await sleep(FREEZE_MS); // the fault itself lasts this long
    } finally {
      this.frozen.delete(resume);
      resume();
    }
  }

  /** Resumes whatever is frozen (the soak stopped midway). */
  thawAll(): void {
    for (const resume of this.frozen) resume();
  }
}
