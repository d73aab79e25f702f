import * as assert from 'uvu/assert';
import { bytesOfLines } from '../soak/follower.js';
import type { LogMessage, TestClient } from './wsClient.js';

/** A follower that does what the docs tell a client to do on `log_reset`: drop its copy and subscribe again from 0. */
export class ResettingFollower {
  resets = 0;
  /** index in the client's messages where the current copy starts */
  private from = 0;

  constructor(readonly client: TestClient, private readonly runId: number) {
    client.socket.on('message', () => {
      const last = client.messages.at(-1)!;
      if (last.type !== 'error' || last.code !== 'log_reset' || last.run_id !== runId) return;
      this.resets++;
      this.from = client.messages.length;
      client.send({ type: 'subscribe', run_id: runId, offset: 0 });
    });
    client.send({ type: 'subscribe', run_id: runId, offset: 0 });
  }

  /** The copy since the last reset, checked contiguous from 0. */
  copy(): { bytes: Buffer; completes: LogMessage[] } {
    const messages = this.client.messages.slice(this.from).filter((m) => m.run_id === this.runId);
    let next = 0;
    const parts: Buffer[] = [];
    for (const message of messages.filter((m) => m.type === 'lines')) {
      assert.is(message.offset, next, 'contiguous: no gap, no overlap');
      parts.push(bytesOfLines(message as { lines: string[] }));
      next = message.next!;
    }
    return { bytes: Buffer.concat(parts), completes: messages.filter((m) => m.type === 'complete') };
  }
}
