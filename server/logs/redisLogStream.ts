import { randomInt } from 'node:crypto';
import { duplicateClient, mastersOf, type Redis } from './redisClient.js';
import type { Redis as RedisServer } from 'ioredis';
import { LeaseLostError } from '../errors.js';
import type { LogHandle, LogSource } from './logSource.js';
import { defineScript } from './redisScript.js';
import { readStream } from './streamRead.js';

/**
 * A run's log in Redis Streams (cluster mode): one stream per run, each entry a chunk of the log
 * file whose id is its starting byte offset (`<offset>-1`), so the stream holds exactly the file's
 * bytes, addressable by the same offsets. An append is accepted only at the stream's current length,
 * checked atomically, so a retry after a lost reply, or after a Redis restart, re-sends the same
 * bytes and nothing is doubled or skipped.
 */

/**
 * The stream, its length in bytes and its generation (new when the log is replaced). Every key of a
 * run carries the hash tag `{run:ID}`, so on Redis Cluster they live in one slot and one script can
 * touch them all; no script touches a key of another run or a global one.
 */
export const tag = (runId: number) => `hub:log:{run:${runId}}`;
const keys = (runId: number) => [tag(runId), `${tag(runId)}:size`, `${tag(runId)}:gen`];

/**
 * A run's time records (see lineTimes.ts), a copy of the runner's times file in one string: each
 * piece is written at its own byte offset (SETRANGE), so re-sending one after a lost reply or a
 * restart writes the same bytes again, and a reader sees only whole records. Like the log, a long
 * copy keeps only its tail in Redis: the string holds the file's bytes from `timesBaseKey`'s offset
 * on, those below are chunks in the object store (liveChunks.ts).
 */
export const timesKey = (runId: number) => `${tag(runId)}:times`;

/** Where the times copy in Redis starts in the times file, and the size of the chunks below it: `<bytes>,<size>` (nothing: 0). */
export const timesBaseKey = (runId: number) => `${tag(runId)}:times:base`;

/**
 * The highest lease epoch that wrote to the run's log (see store/runs.ts RunFence): an append or a
 * times write under a smaller one is refused, so a worker that lost the run cannot add to its log.
 */
export const epochKey = (runId: number) => `${tag(runId)}:epoch`;

/**
 * How much of a running log is in the object store as chunks, and the chunk size: `<bytes>,<size>`
 * (see liveChunks.ts). Readers read below `<bytes>` from the chunks; the stream no longer holds it.
 */
export const chunksKey = (runId: number) => `${tag(runId)}:chunks`;

/** Lua: refuses (returns -1) when ARGV[3] is below the epoch in KEYS[n]; else records it. */
export const CHECK_EPOCH = (n: number) => `
local epoch = tonumber(ARGV[3])
local held = tonumber(redis.call('GET', KEYS[${n}]) or '0')
if epoch < held then return -1 end
if epoch > held then redis.call('SET', KEYS[${n}], ARGV[3]) end
`;

/** Lua: `base`, where the times copy KEYS[b] starts in the times file (`timesBaseKey`), and its chunks' size. */
const TIMES_BASE = (b: number) => `
local function timesBase()
  local record = redis.call('GET', KEYS[${b}])
  if not record then return 0, 0 end
  return tonumber(string.match(record, '^(%d+)')), tonumber(string.match(record, ',(%d+)$'))
end
`;

/**
 * Lua, a function: writes ARGV[n + 1] at offset ARGV[n] of the times file into its copy KEYS[k]
 * (which starts at the file's offset in KEYS[b]) unless that would leave a gap (the copy was lost:
 * a Redis restart without persistence); what lies below the copy's start is in chunks already.
 * Returns the file's length the copy reaches, where the next write goes.
 */
const WRITE_TIMES_AT = (k: number, n: number, b: number) => `${TIMES_BASE(b)}
local function writeTimes()
  local base = timesBase()
  local size = base + redis.call('STRLEN', KEYS[${k}])
  local offset = tonumber(ARGV[${n}])
  local bytes = ARGV[${n + 1}]
  if offset > size then return size end
  if offset < base then
    if offset + string.len(bytes) <= base then return size end
    bytes = string.sub(bytes, base - offset + 1)
    offset = base
  end
  return base + redis.call('SETRANGE', KEYS[${k}], offset - base, bytes)
end
`;

const writeTimesScript = defineScript<number>('hubLogWriteTimes', `${CHECK_EPOCH(2)}${WRITE_TIMES_AT(1, 1, 3)}
return writeTimes()
`);

/**
 * Writes bytes of the times file at their offset in its copy, under lease `epoch`; returns the
 * copy's length (less than asked: send from there). LeaseLostError when a later epoch wrote.
 */
export async function writeTimes(redis: Redis, runId: number, offset: number, bytes: Buffer, epoch = 0): Promise<number> {
  return fenced(runId, Number(await writeTimesScript(redis, [timesKey(runId), epochKey(runId), timesBaseKey(runId)], [offset, bytes, epoch])));
}

export function fenced(runId: number, answer: number): number {
  if (answer === -1) throw new LeaseLostError(runId, `The log of run ${runId} was written under a later lease: this worker's append is refused`);
  return answer;
}

const fenceScript = defineScript<number>('hubLogFence', `${CHECK_EPOCH(1)} return 0`);

/** A hub gave the run up under `epoch` (see RunFence): appends of any earlier epoch are refused from now on. */
export async function fenceStream(redis: Redis, runId: number, epoch: number): Promise<void> {
  await fenceScript(redis, [epochKey(runId)], [0, '', epoch]);
}

/** Lua: from the times copy KEYS[1] (its start in KEYS[2]), ARGV[2] bytes at the file's offset ARGV[1]: `{base, chunk size, copy length, bytes}` in one look, so a trim cannot come between. */
const readTimesScript = defineScript<[number, number, number, Buffer]>('hubLogReadTimes', `${TIMES_BASE(2)}
local base, chunkBytes = timesBase()
local from = tonumber(ARGV[1]) - base
local want = tonumber(ARGV[2])
local bytes = ''
if from >= 0 and want > 0 then bytes = redis.call('GETRANGE', KEYS[1], from, from + want - 1) end
return {base, chunkBytes, redis.call('STRLEN', KEYS[1]), bytes}
`, { buffer: true });

/** Where times bytes below the Redis copy's start are read (their chunks: liveChunks.ts). */
export interface TimesBelow {
  /** how many bytes it read at `position` (up to `length`) */
  read(buffer: Buffer, offset: number, length: number, position: number, chunkBytes: number): Promise<number>;
  close(): Promise<void>;
}

/** Positional reads of a run's times file as the Redis copy holds it; below the copy's start, through `below` (nothing without). */
export class TimesHandle implements LogHandle {
  constructor(private readonly redis: Redis, private readonly runId: number, private readonly below: TimesBelow | null = null) {}

  /** Fills `length` bytes from `position` (fewer only at the end), across the chunks and the copy. */
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    let done = 0;
    while (done < length) {
      const at = position + done;
      const [base, chunkBytes, , bytes] = await readTimesScript(this.redis, [timesKey(this.runId), timesBaseKey(this.runId)], [at, length - done]);
      if (at >= base) return { bytesRead: done + bytes.copy(buffer, offset + done) };
      const read = this.below ? await this.below.read(buffer, offset + done, Math.min(length - done, base - at), at, chunkBytes) : 0;
      if (read === 0) break;
      done += read;
    }
    return { bytesRead: done };
  }

  async stat(): Promise<{ size: number; ino: number }> {
    const [base, , length] = await readTimesScript(this.redis, [timesKey(this.runId), timesBaseKey(this.runId)], [0, 0]);
    return { size: Number(base) + Number(length), ino: 0 };
  }

  async close(): Promise<void> {
    await this.below?.close();
  }
}

/**
 * Lua, a function: appends ARGV[2] at offset ARGV[1] if that is the stream's length; returns the
 * length after. A new stream takes generation ARGV[4], drawn at random by the writer: a counter
 * would be a global key (CROSSSLOT on Redis Cluster), and readers only compare generations.
 */
const APPEND_FUNCTION = `
local function append()
  local size = tonumber(redis.call('GET', KEYS[2]) or '-1')
  local offset = tonumber(ARGV[1])
  local length = string.len(ARGV[2])
  if size == -1 then
    if offset ~= 0 or length == 0 then return 0 end
    redis.call('SET', KEYS[3], ARGV[4])
    size = 0
  end
  if offset ~= size or length == 0 then return size end
  redis.call('XADD', KEYS[1], ARGV[1] .. '-1', 'b', ARGV[2])
  size = offset + length
  redis.call('SET', KEYS[2], size)
  redis.call('SPUBLISH', KEYS[1], size)
  return size
end
`;

const appendScript = defineScript<number>('hubLogAppend', `${CHECK_EPOCH(4)}${APPEND_FUNCTION}
return append()
`);

/**
 * Appends `bytes` at `offset` under lease `epoch`; returns the stream's length after (≠ offset +
 * length: it was there, or a gap). LeaseLostError when a later epoch wrote to the log.
 */
export async function appendChunk(redis: Redis, runId: number, offset: number, bytes: Buffer, epoch = 0): Promise<number> {
  return fenced(runId, Number(await appendScript(redis, [...keys(runId), epochKey(runId)], [offset, bytes, epoch, newGeneration()])));
}

/**
 * One ship in one call: new bytes of the times file (ARGV[5], ARGV[6]; times first, so a reader of
 * new lines mostly finds their times) and of the log (as `append`), under one epoch check.
 */
const shipScript = defineScript<number | [number, number]>('hubLogShip', `${CHECK_EPOCH(4)}${APPEND_FUNCTION}${WRITE_TIMES_AT(5, 5, 6)}
local times = -1
if string.len(ARGV[6]) > 0 then times = writeTimes() end
return {append(), times}
`);

export interface ShipPiece {
  /** where `bytes` go in the log: the stream's length as last known */
  offset: number;
  bytes: Buffer;
  /** where `times` go in the times copy */
  timesOffset: number;
  times: Buffer;
  epoch: number;
}

/**
 * Writes new bytes of a run's log and of its times file in one call (either may be empty); returns
 * the stream's and the times copy's lengths after (from there next; `timesSize` is `timesOffset`
 * when no times were sent). LeaseLostError when a later epoch wrote to the log.
 */
export async function shipPiece(redis: Redis, runId: number, piece: ShipPiece): Promise<{ size: number; timesSize: number }> {
  const answer = await shipScript(redis, [...keys(runId), epochKey(runId), timesKey(runId), timesBaseKey(runId)], [piece.offset, piece.bytes, piece.epoch, newGeneration(), piece.timesOffset, piece.times]);
  if (!Array.isArray(answer)) {
    fenced(runId, Number(answer));
    throw new Error(`Unexpected answer from the ship script: ${String(answer)}`);
  }
  const [size, times] = answer.map(Number);
  return { size, timesSize: times === -1 ? piece.timesOffset : times };
}

/** A stream generation: random, 48 bits (a safe integer), so two streams of one run never share one. */
function newGeneration(): number {
  return randomInt(1, 2 ** 48);
}

/** The stream's length in bytes, or null when the run's log was never shipped. */
async function streamSize(redis: Redis, runId: number): Promise<number | null> {
  const size = await redis.get(keys(runId)[1]);
  return size === null ? null : Number(size);
}

/**
 * How much of a run's log was shipped (0 if none): in cluster mode, a finished run's log_size, so
 * every reader (poll, WebSocket, raw, search) ends at the bytes that exist, whoever records the end.
 */
export async function shippedSize(redis: Redis, runId: number): Promise<number> {
  return (await streamSize(redis, runId)) ?? 0;
}

/** A handle on a run's stream, which knows its generation (a new one when the log is replaced). */
export interface StreamLogHandle extends LogHandle {
  readonly generation: number;
  /** the stream's generation as the handle's last stat found it (null: the stream was gone) */
  readonly seenGeneration: number | null;
}

class StreamHandle implements StreamLogHandle {
  seenGeneration: number | null;

  constructor(private readonly redis: Redis, private readonly runId: number, readonly generation: number) {
    this.seenGeneration = generation;
  }

  /** Fills `length` bytes from `position` (fewer only at the end of the stream, or at a gap), as a file read does. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return readStream(this.redis, keys(this.runId)[0], buffer, offset, length, position);
  }

  /** The length and, in the same call (both keys are in the run's slot), the generation, for isReplaced. */
  async stat(): Promise<{ size: number; ino: number }> {
    const [, sizeKey, genKey] = keys(this.runId);
    const [size, generation] = await this.redis.mget(sizeKey, genKey);
    this.seenGeneration = generation === null ? null : Number(generation);
    return { size: size === null ? 0 : Number(size), ino: this.generation };
  }

  async close(): Promise<void> {}
}

/**
 * The poll behind the notices, while they may be missed: until a stream's subscription is
 * confirmed, and from any trouble on the notice connection (closed, reconnecting, a node gone or
 * moved) until it has been up NOTICES_SETTLED_MS since.
 */
const WATCH_POLL_MS = 250;
/** Once the notices are settled, the poll only guards against what nobody foresaw: at this pace. */
const SETTLED_POLL_MS = 5000;
/** The notice connection is trusted again this long after its last trouble (its resubscription done). */
const NOTICES_SETTLED_MS = 1000;

/** A run's log read from its Redis stream: the same offsets and bytes as the file it was shipped from. */
export class RedisLogSource implements LogSource {
  constructor(private readonly redis: Redis, private readonly runId: number) {}

  async open(): Promise<StreamLogHandle | null> {
    const [, , genKey] = keys(this.runId);
    const generation = await this.redis.get(genKey);
    return generation === null ? null : new StreamHandle(this.redis, this.runId, Number(generation));
  }

  /** From the handle's last stat (a reader asks right after one): no call of its own. */
  async isReplaced(handle: LogHandle): Promise<boolean> {
    const { seenGeneration, generation } = handle as StreamLogHandle;
    return seenGeneration !== null && seenGeneration !== generation;
  }

  /** The times copy; `below`: where its bytes below the copy's start are read (liveChunks.ts). */
  async openTimes(below: TimesBelow | null = null): Promise<LogHandle | null> {
    return (await this.redis.exists(timesKey(this.runId))) ? new TimesHandle(this.redis, this.runId, below) : null;
  }

  /**
   * Hints at once from the append's own notice (each append publishes on the stream's name), with a
   * poll of the length behind it: every 250 ms while notices may be missed (see Notices.settled),
   * every 5 s once they are settled.
   */
  watch(hint: () => void): () => void {
    const channel = keys(this.runId)[0];
    const watched = notices(this.redis);
    const stopNotices = watched.listen(channel, hint);
    let last: string | null = null;
    let polledAt = 0;
    const timer = setInterval(() => {
      // A length read 4 times a second for each followed run cost Redis as much as the appends did.
      if (watched.settled(channel) && Date.now() - polledAt < SETTLED_POLL_MS) return;
      polledAt = Date.now();
      this.redis.get(keys(this.runId)[1]).then((size) => {
        if (size !== last) {
          last = size;
          hint();
        }
      }, () => {});
    }, WATCH_POLL_MS);
    timer.unref();
    return () => {
      clearInterval(timer);
      stopNotices();
    };
  }
}

/**
 * One subscriber per Redis client, shared by every watched stream. Sharded pub/sub (Redis 7): an
 * append's notice goes only to the node of its run's slot, not to every node of a Redis Cluster;
 * on a Cluster client ioredis holds one subscriber connection per master and moves the channels
 * with their slots (a failover); on one Redis it is one connection.
 */
class Notices {
  private readonly listeners = new Map<string, Set<() => void>>();
  /** when each channel's subscription was confirmed */
  private readonly confirmed = new Map<string, number>();
  private readonly subscriber: Redis;
  /** the last time notices may have been missed (now: not connected yet) */
  private troubleAt = Date.now();

  constructor(redis: Redis) {
    this.subscriber = duplicateClient(redis);
    this.subscriber.on('error', () => {}); // reconnects on its own; the poll covers the gap
    this.subscriber.on('smessage', (channel: string) => {
      for (const listener of this.listeners.get(channel) ?? []) listener();
    });
    // One Redis: its connection's life. A Cluster client: its nodes' and its shard subscribers' too.
    for (const event of ['error', 'close', 'reconnecting', 'end', 'ready', 'node error', 'nodeError', '+node', '-node', '+subscriber', '-subscriber', 'subscribersReady']) {
      this.subscriber.on(event, () => (this.troubleAt = Date.now()));
    }
  }

  /** Are `channel`'s notices to be trusted (subscribed, the connection up and untroubled for a while)? */
  settled(channel: string): boolean {
    const since = this.confirmed.get(channel);
    return since !== undefined && this.subscriber.status === 'ready' && Date.now() - Math.max(since, this.troubleAt) >= NOTICES_SETTLED_MS;
  }

  listen(channel: string, listener: () => void): () => void {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.subscriber.ssubscribe(channel).then(() => {
        if (this.listeners.has(channel)) this.confirmed.set(channel, Date.now());
      }, () => {});
    }
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0 && this.listeners.get(channel) === set) {
        this.listeners.delete(channel);
        this.confirmed.delete(channel);
        this.subscriber.sunsubscribe(channel).catch(() => {});
      }
    };
  }

  close(): void {
    this.subscriber.disconnect();
  }
}

const noticesOf = new WeakMap<Redis, Notices>();
function notices(redis: Redis): Notices {
  let found = noticesOf.get(redis);
  if (!found) {
    found = new Notices(redis);
    noticesOf.set(redis, found);
  }
  return found;
}

/** Closes the notice connection a client opened for watching (when the client itself is closed). */
export function closeNotices(redis: Redis): void {
  noticesOf.get(redis)?.close();
  noticesOf.delete(redis);
}

/** Every key of a run's log in Redis. */
const runKeys = (runId: number) => [...keys(runId), timesKey(runId), timesBaseKey(runId), epochKey(runId), chunksKey(runId)];

/** Deletes a run's stream (a log replaced: its next append at 0 starts a new generation). */
export async function deleteStream(redis: Redis, runId: number): Promise<void> {
  await redis.del(...runKeys(runId));
}

/** After a finished log is archived, its stream goes after this long (readers that opened it meanwhile switch to the archive). */
export const STREAM_GRACE_S = 600;

/** The stream of an archived run expires (never before the archive holds the whole log). */
export async function expireStream(redis: Redis, runId: number): Promise<void> {
  const multi = redis.multi();
  for (const key of runKeys(runId)) multi.expire(key, STREAM_GRACE_S);
  await multi.exec();
}

/** Keys looked at per SCAN step while listing streams. */
const SCAN_COUNT = 500;

/**
 * The runs whose stream is not set to expire (being written, or finished and never archived), a
 * page at a time: SCAN walks the keyspace without blocking Redis, on each master of a Redis Cluster
 * (a node's SCAN sees only its own keys); the TTLs go to the node that holds the keys.
 */
export async function* listUnexpiredStreams(redis: Redis): AsyncGenerator<number[]> {
  for (const node of mastersOf(redis)) yield* listUnexpiredOn(node);
}

async function* listUnexpiredOn(redis: RedisServer): AsyncGenerator<number[]> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', 'hub:log:{run:*}:size', 'COUNT', SCAN_COUNT);
    cursor = next;
    if (found.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.ttl(key);
    const ttls = (await pipeline.exec()) ?? [];
    const ids = found.filter((_, index) => ttls[index]?.[1] === -1).map((key) => Number(/\{run:(\d+)\}/.exec(key)?.[1])).filter(Number.isSafeInteger);
    if (ids.length > 0) yield ids;
  } while (cursor !== '0');
}
