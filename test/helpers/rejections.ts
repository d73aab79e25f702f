import type { ChildProcess } from 'node:child_process';
import { inspect } from 'node:util';
import type { uvu } from 'uvu';
import { UNHANDLED_REJECTION_MESSAGE } from '../../server/unhandled.js';

/**
 * Unhandled rejections: this process's own, and those a hub or worker started by a test died of
 * (test/helpers/hub.ts and cluster.ts report them). Node's default would end the whole run at the
 * first one, naming no test ("Exiting early"); here each is kept with the test it happened during.
 * A suite set up with setUp() fails that test; and the run ends non-zero, listing every one.
 */
interface Rejection {
  what: string;
  during: string;
  reason: unknown;
}

const rejections: Rejection[] = [];
let current = 'loading the test files';

/** The test now running, as setUp's hooks say (other suites' tests do not: theirs is told as after the last one named). */
export function noteTest(suite: string, test: string): void {
  current = `"${test}" of suite ${suite}`;
}

function noteTestEnded(): void {
  current = `whatever ran after ${current}`;
}

export function reportRejection(what: string, reason: unknown): void {
  const rejection = { what, during: current, reason };
  rejections.push(rejection);
  process.stderr.write(`\n${describe(rejection)}\n`);
}

export const rejectionCount = (): number => rejections.length;

/** Those since `count`, as one error, or null. */
export function rejectionsSince(count: number): Error | null {
  const since = rejections.slice(count);
  return since.length === 0 ? null : new Error(since.map(describe).join('\n'));
}

function describe({ what, during, reason }: Rejection): string {
  return `${what} during ${during}: ${typeof reason === 'string' ? reason : inspect(reason)}`;
}

/** Installed once per process, whichever test file imports it first. */
const INSTALLED = Symbol.for('run-hub.test.rejections');
const installed = globalThis as { [INSTALLED]?: true };
if (!installed[INSTALLED]) {
  installed[INSTALLED] = true;
  process.on('unhandledRejection', (reason) => reportRejection('An unhandled rejection in the test process', reason));
  process.on('exit', () => {
    if (rejections.length === 0) return;
    process.stderr.write(`\nFAILED: ${rejections.length} unhandled rejection(s):\n${rejections.map(describe).join('\n')}\n`);
    process.exitCode = 1;
  });
}

/** Fails a suite's test during which an unhandled rejection happened (setUp installs it). */
export function failTestsOnRejection<T>(tests: uvu.Test<T>): void {
  let before = 0;
  let reported = 0;
  tests.before.each((context) => {
    const { __suite__, __test__ } = context as { __suite__?: string; __test__?: string };
    noteTest(__suite__ ?? '', __test__ ?? '');
    before = rejectionCount();
  });
  tests.after.each(() => {
    // uvu calls this hook again when it failed: the second time it lets the failure through. (When
    // the test had failed by itself, uvu 0.5 drops that failure and the suite's next tests; the
    // run still fails, naming this test, from the exit summary.)
    const failure = reported < rejectionCount() ? rejectionsSince(Math.max(before, reported)) : null;
    reported = rejectionCount();
    if (!current.startsWith('whatever')) noteTestEnded();
    if (failure) throw failure;
  });
}

/** A hub's or worker's own unhandled-rejection line, or Node's when it died before that was set. */
const DIED_OF_REJECTION = new RegExp(`"msg":"${UNHANDLED_REJECTION_MESSAGE}"|triggerUncaughtException\\(err, true /\\* fromPromise|\\[UnhandledPromiseRejection`);

/** Reports it if a process a test started dies of an unhandled rejection. */
export function watchForRejection(child: ChildProcess, name: string, output: () => string): void {
  // 'close', not 'exit': by then its output has all been read.
  child.once('close', () => {
    const text = output();
    if (DIED_OF_REJECTION.test(text)) reportRejection(`${name} (pid ${child.pid}) died of an unhandled rejection`, text.split('\n').slice(-30).join('\n'));
  });
}
