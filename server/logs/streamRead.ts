import type { Redis } from './redisClient.js';
import { defineScript } from './redisScript.js';

/**
 * Exact reads of a run's stream: entry ids are byte offsets, so the script finds the entry holding
 * the position asked (the last one starting at or before it), walks on from there and slices the
 * overlapping entries in Redis; only the bytes asked for cross the wire. An entry that starts past
 * the position reached ends the read short (a gap: entries below a chunk mark trimmed while this
 * reads, see liveChunks.ts); the chunk readers ask the chunks for the rest.
 */
const READ = `
local pos = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local entries = redis.call('XREVRANGE', KEYS[1], ARGV[1] .. '-1', '-', 'COUNT', 1)
local parts = {}
local got = 0
while entries[1] do
  for _, entry in ipairs(entries) do
    local skip = pos + got - tonumber(string.match(entry[1], '^(%d+)'))
    if skip < 0 then return table.concat(parts) end
    local chunk = entry[2][2]
    if skip < string.len(chunk) then
      local piece = string.sub(chunk, skip + 1, skip + want - got)
      parts[#parts + 1] = piece
      got = got + string.len(piece)
      if got >= want then return table.concat(parts) end
    end
  end
  entries = redis.call('XRANGE', KEYS[1], '(' .. entries[#entries][1], '+', 'COUNT', ARGV[3])
end
return table.concat(parts)
`;
const readScript = defineScript<Buffer>('hubLogRead', READ, { buffer: true });

/** Bytes one script call returns at most: a long read is several calls, so none holds Redis up for long. */
const READ_MAX_BYTES = 1024 * 1024;
/** Entries the script takes per XRANGE as it walks (in Redis: no bytes cross the wire for them). */
const READ_ENTRIES = 16;

/** What reads took from Redis, process-wide: for tests and the bench (read amplification). */
export const streamReadCounters = {
  /** log bytes fetched from Redis */
  bytesRead: 0,
  /** script calls made */
  calls: 0,
};

/** Fills `length` bytes from `position` of the stream `key` (fewer at its end, or at a gap), as a file read does. */
export async function readStream(redis: Redis, key: string, buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
  let bytesRead = 0;
  while (bytesRead < length) {
    const want = Math.min(READ_MAX_BYTES, length - bytesRead);
    const bytes = await readScript(redis, [key], [position + bytesRead, want, READ_ENTRIES]);
    streamReadCounters.calls++;
    streamReadCounters.bytesRead += bytes.length;
    bytesRead += bytes.copy(buffer, offset + bytesRead, 0, Math.min(bytes.length, want));
    if (bytes.length < want) break;
  }
  return { bytesRead };
}
