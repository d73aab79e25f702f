import * as assert from 'uvu/assert';
import type { Frame, LogSink, ServerMessageType } from '../../server/hub/messages.js';

/** A log sink that keeps every message; `full` makes it report a full socket until drained. */
export class FakeSink implements LogSink {
  readonly messages: { type: ServerMessageType; body: any; next?: number }[] = [];
  closed = false;
  full = false;
  /** the runs whose subscription the hub ended, in order */
  readonly ended: number[] = [];
  private waiters: (() => void)[] = [];

  send(type: ServerMessageType, frame: Frame, next?: number): void {
    const body = JSON.parse(String(frame));
    this.messages.push(next === undefined ? { type, body } : { type, body, next });
  }

  congested(): boolean {
    return this.full;
  }

  drained(): Promise<void> {
    return this.full ? new Promise((resolve) => this.waiters.push(resolve)) : Promise.resolve();
  }

  drain(): void {
    this.full = false;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  subscriptionEnded(runId: number): void {
    this.ended.push(runId);
  }

  /** Lines received, checked contiguous from `from`. */
  lines(from: number): string[] {
    const lines: string[] = [];
    let next = from;
    for (const { type, body } of this.messages) {
      if (type !== 'lines') continue;
      assert.is(body.offset, next, 'contiguous');
      lines.push(...body.lines);
      next = body.next;
    }
    return lines;
  }
}
