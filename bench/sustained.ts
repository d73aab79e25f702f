import type { TestHub } from '../test/helpers/hub.js';
import type { Collector } from './collector.js';
import { runBaseline, serverRss } from './harness.js';
import { Histogram } from './histogram.js';
import { correctness, followRun, type Result } from './scenarios.js';

/** What "sustained" means (the issue's definition). */
export const MAX_P99_MS = 250;
const MAX_DRAIN_MS = 3000;

export interface Attempt {
  rate: number;
  passed: boolean;
  p99: number;
  /** the longest a client took to have the last line after it was written */
  drainMs: number;
  lost: number;
  duplicated: number;
}

export function judge(rate: number, collectors: Collector[], histogram: Histogram, count: number): Attempt {
  const { lost, duplicated } = correctness(collectors, count);
  const p99 = histogram.percentile(99);
  const drainMs = Math.max(...collectors.map((c) => c.lastAt - c.lastSent));
  return { rate, passed: lost === 0 && duplicated === 0 && p99 < MAX_P99_MS && drainMs <= MAX_DRAIN_MS, p99, drainMs, lost, duplicated };
}

/**
 * Tries the target rate, then 1.5× and 2× while it holds, or ½ and ¼ until one holds: a bracket of
 * the highest sustained rate. Before it, a one-second run at the target warms the processes up (the
 * first seconds of a fresh process run unoptimised code and said more about the JIT than the hub);
 * an attempt at the target that fails is repeated once (this shared machine has bad seconds), and
 * both attempts are kept in results.json.
 */
export async function bracket(target: number, p99Target: number, attempt: (rate: number, seconds?: number) => Promise<Attempt>): Promise<Attempt[]> {
  await attempt(target, 1);
  const attempts = [await attempt(target)];
  const good = (a: Attempt) => a.passed && a.p99 <= p99Target;
  if (!good(attempts[0])) {
    const again = await attempt(target);
    // the better one first: it is the verdict at the target
    if (good(again) || (again.passed && !attempts[0].passed) || (again.passed === attempts[0].passed && again.p99 < attempts[0].p99)) attempts.unshift(again);
    else attempts.push(again);
  }
  const atTarget = attempts[0];
  const factors = atTarget.passed ? [1.5, 2] : [0.5, 0.25];
  for (const factor of factors) {
    const next = await attempt(Math.round(target * factor));
    attempts.push(next);
    if (next.passed !== atTarget.passed) break;
  }
  return attempts;
}

const rateText = (rate: number) => `${rate.toLocaleString('en')}/s`;

export function describe(attempts: Attempt[]): string {
  const best = bestOf(attempts);
  // the lowest rate that failed above the best that held (a repeated attempt at the target may have failed once)
  const failed = attempts.filter((a) => !a.passed && (!best || a.rate > best.rate)).sort((a, b) => a.rate - b.rate)[0];
  const held = best ? `${rateText(best.rate)} held (p99 ${best.p99.toFixed(1)} ms)` : 'nothing held';
  if (!failed) return held;
  const why = failed.lost || failed.duplicated ? `${failed.lost} lost, ${failed.duplicated} dup` : failed.p99 >= MAX_P99_MS ? `p99 ${failed.p99.toFixed(0)} ms` : `last line after ${(failed.drainMs / 1000).toFixed(1)} s`;
  return `${held}; ${rateText(failed.rate)} not (${why})`;
}

export const bestOf = (attempts: Attempt[]) => attempts.filter((a) => a.passed).sort((a, b) => b.rate - a.rate)[0];

/**
 * The highest rate one run can sustain to `subscribers` clients (nothing lost, p99 under 250 ms,
 * every line delivered within 3 s of the last write), and the same for the bare baseline.
 * `p99Target`: the p99 the hub must also keep at the target rate.
 */
export async function maxSustained(hub: TestHub, subscribers: number, target: number, seconds: number, p99Target?: number): Promise<Result> {
  let rss = 0;
  const hubAttempts = await bracket(target, p99Target ?? MAX_P99_MS, async (rate, runSeconds = seconds) => {
    const histogram = new Histogram();
    const count = Math.round(rate * runSeconds);
    return judge(rate, await followRun(hub, subscribers, count, rate, histogram, () => (rss = Math.max(rss, serverRss(hub)))), histogram, count);
  });
  const baseAttempts = await bracket(target, p99Target ?? MAX_P99_MS, async (rate, runSeconds = seconds) => {
    const histogram = new Histogram();
    const count = Math.round(rate * runSeconds);
    return judge(rate, await runBaseline(subscribers, count, rate, hub.dir, histogram, Math.ceil(rate * 0.2)), histogram, count);
  });
  const best = bestOf(hubAttempts);
  const baseBest = bestOf(baseAttempts);
  const atTarget = hubAttempts[0]; // the better of the (at most two) attempts at the target
  const met = atTarget.passed && (p99Target === undefined || atTarget.p99 <= p99Target);
  return {
    scenario: `max sustained rate → ${subscribers} sub (${seconds} s runs)`,
    hub: `${describe(hubAttempts)}; RSS ≤ ${rss.toFixed(0)} MB`,
    baseline: describe(baseAttempts),
    ratio: best && baseBest ? best.rate / baseBest.rate : undefined,
    target: `≥ ${rateText(target)}${p99Target === undefined ? '' : ` with p99 ≤ ${p99Target} ms`}`,
    met,
    // Over its capacity the hub falls behind but must still deliver every line: any loss fails.
    lost: hubAttempts.reduce((sum, a) => sum + a.lost, 0),
    duplicated: hubAttempts.reduce((sum, a) => sum + a.duplicated, 0),
    data: { hub: hubAttempts, baseline: baseAttempts, serverRssMb: rss },
  };
}
