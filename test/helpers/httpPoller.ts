import * as assert from 'uvu/assert';
import { bytesOfLines } from '../soak/follower.js';
import type { TestHub } from './hub.js';

/** An HTTP follower: `GET logs?offset=` from 0, every 100 ms, each page from the last one's next, until a page says complete; a failed request is asked again. */
export async function pollFromZero(hub: TestHub, projectId: number, runId: number): Promise<{ bytes: Buffer; failures: number }> {
  const pieces: Buffer[] = [];
  let offset = 0;
  let failures = 0;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { status, body } = await hub.api('GET', `/api/projects/${projectId}/runs/${runId}/logs?offset=${offset}`);
    if (status !== 200) failures++;
    else {
      assert.is(body.offset, offset, 'each page starts where the last ended');
      pieces.push(bytesOfLines(body));
      offset = body.next;
      if (body.complete) return { bytes: Buffer.concat(pieces), failures };
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // the poller's own interval
  }
  throw new Error('the log never said complete');
}
