import type { uvu } from 'uvu';
import { failTestsOnRejection } from './rejections.js';

/**
 * `suite.before`, but a failure fails every test of the suite. uvu 0.5 swallows an error thrown by
 * a `before` hook: the suite's tests are silently not run and the exit code stays 0
 * (lukeed/uvu#142, #191). A `before.each` error is reported per test, so the error is kept and
 * thrown from there. A test during which an unhandled rejection happened fails (./rejections.ts).
 */
export function setUp<T>(tests: uvu.Test<T>, prepare: (context: T) => Promise<void> | void): void {
  failTestsOnRejection(tests);
  let failure: unknown;
  tests.before(async (context) => {
    try {
      await prepare(context);
    } catch (error) {
      failure = error;
    }
  });
  tests.before.each(() => {
    if (failure !== undefined) throw failure;
  });
}
