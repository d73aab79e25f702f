import type { Redis } from './redisClient.js';

export type ScriptArg = string | number | Buffer;

/** A script call on one client: its keys, then its arguments. */
export type ScriptCall<T> = (redis: Redis, keys: string[], args: ScriptArg[]) => Promise<T>;

type Defined = (...args: ScriptArg[]) => Promise<unknown>;

/**
 * A Lua script run by EVALSHA through ioredis's `defineCommand`: its text crosses the wire once per
 * connection (and again after a NOSCRIPT, a Redis that restarted), not with every call as EVAL
 * sends it. `buffer`: the answer comes back as Buffers (binary log bytes), not strings.
 */
export function defineScript<T>(name: string, lua: string, { buffer = false } = {}): ScriptCall<T> {
  const defined = new WeakSet<Redis>();
  return async (redis, keys, args) => {
    if (!defined.has(redis)) {
      redis.defineCommand(name, { lua });
      defined.add(redis);
    }
    const call = (redis as unknown as Record<string, Defined>)[buffer ? `${name}Buffer` : name];
    return (await call.call(redis, keys.length, ...keys, ...args)) as T;
  };
}
