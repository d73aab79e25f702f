import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LogSource } from '../../server/logs/logSource.js';
import { waitFor } from '../helpers/hub.js';

export interface SourceUnderTest {
  source: LogSource;
  /** writes bytes at the end of the log (creating it) */
  append(bytes: Buffer): Promise<void>;
  /** puts another log in its place */
  replace(bytes: Buffer): Promise<void>;
  done(): Promise<void>;
}

/** What every LogSource must do, whatever holds the log: run it against each implementation. */
export function logSourceContract(name: string, make: () => Promise<SourceUnderTest>): void {
  const contract = suite<{ it: SourceUnderTest }>(`log source contract: ${name}`);
  contract.before.each(async (context) => {
    context.it = await make();
  });
  contract.after.each(({ it }) => it.done());

  contract('a log that does not exist yet opens as null; once written, its bytes read back at any position', async ({ it }) => {
    assert.is(await it.source.open(), null);
    const bytes = Buffer.from('first line\nsecond é line\n日本');
    await it.append(bytes.subarray(0, 7));
    await it.append(bytes.subarray(7));
    const handle = (await it.source.open())!;
    try {
      assert.is((await handle.stat()).size, bytes.length);
      const buffer = Buffer.alloc(bytes.length);
      const { bytesRead } = await handle.read(buffer, 0, bytes.length - 5, 5);
      assert.is(bytesRead, bytes.length - 5);
      assert.equal(buffer.subarray(0, bytesRead), bytes.subarray(5));
      await it.append(Buffer.from('more\n'));
      assert.is((await handle.stat()).size, bytes.length + 5, 'an open handle sees the log grow');
    } finally {
      await handle.close();
    }
  });

  contract('an append is hinted to a watcher; stopping the watch stops the hints', async ({ it }) => {
    await it.append(Buffer.from('a\n'));
    let hints = 0;
    const stop = it.source.watch(() => hints++);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = hints;
    await it.append(Buffer.from('b\n'));
    await waitFor(() => hints > before, 'a hint after the append', 3000);
    stop();
  });

  contract('a log replaced in its place is told apart from the one a handle reads', async ({ it }) => {
    await it.append(Buffer.from('old log\n'));
    const handle = (await it.source.open())!;
    try {
      await handle.stat();
      assert.is(await it.source.isReplaced(handle), false);
      await it.replace(Buffer.from('new\n'));
      // (as of the handle's last stat: a reader asks right after one)
      await handle.stat();
      assert.is(await it.source.isReplaced(handle), true);
      const fresh = (await it.source.open())!;
      assert.is((await fresh.stat()).size, 4);
      await fresh.close();
    } finally {
      await handle.close();
    }
  });

  contract.run();
}
