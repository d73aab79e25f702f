import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { closeNotices, RedisLogSource } from '../../server/logs/redisLogStream.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCommandCounter } from '../helpers/redisCommandCounter.js';
import { waitFor } from '../helpers/hub.js';
import { failTestsOnRejection } from '../helpers/rejections.js';

failTestsOnRejection(test);

const redisServer = await startRedis();
const counter = await startRedisCommandCounter(redisServer.url);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.after(async () => {
  await counter.close();
  await redisServer.stop();
});

test("a followed stream's length is read 4 times a second only while its notices may be missed (until subscribed, and for a second after the notice connection is back), every 5 s once they are settled; a length set without a notice is still found", async () => {
  // Through the counter: each length read (GET) the watch makes crosses the wire and is counted.
  const redis = new Redis(counter.url, { maxRetriesPerRequest: null, commandTimeout: 5000 });
  redis.on('error', () => {});
  const admin = new Redis(redisServer.url);
  const sizeKey = 'hub:log:{run:1}:size';
  const reads = () => counter.counts().get('get') ?? 0;
  let hints = 0;
  const stop = new RedisLogSource(redis, 1).watch(() => hints++);
  try {
    await pause(1500); // subscribed, and the connection up for a second
    const before = reads();
    await pause(4000);
    const settledReads = reads() - before;
    assert.ok(settledReads <= 1, `${settledReads} length reads in 4 s with the notices settled (16 at 250 ms)`);

    // A length that changes with no notice (one lost): the slow poll finds it, within 5 s and a little.
    const hinted = hints;
    await admin.set(sizeKey, '10');
    await waitFor(() => hints > hinted, 'a hint from the slow poll', 8000);

    // The notice connection dropped (a network blip): the fast poll is back at once, and a length
    // that changed meanwhile (its notice lost while the connection was down) is found within a poll or two.
    await admin.client('KILL', 'TYPE', 'pubsub');
    const afterKill = hints;
    const killedAt = Date.now();
    await admin.set(sizeKey, '20');
    await waitFor(() => hints > afterKill, 'a hint from the fast poll', 2500);
    const found = Date.now() - killedAt;
    const fastFrom = reads();
    await pause(500);
    assert.ok(reads() - fastFrom >= 1, 'polled while the connection settles');
    console.log(`  (settled: ${settledReads} length reads in 4 s; after the notice connection was killed, a silent change was found in ${found} ms)`);
  } finally {
    stop();
    closeNotices(redis);
    redis.disconnect();
    admin.disconnect();
  }
});

test.run();
