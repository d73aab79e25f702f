import fs from 'node:fs/promises';
import { withTimeout } from '../retry.js';
import type { ReadyReport } from '../wire.js';

/** One part the hub needs: resolves if it can be used now. */
export type ReadyCheck = () => Promise<void>;

/**
 * `/api/ready`: every part checked at once, each within `timeoutMs`; ready only if all answer. What a
 * load balancer polls (`/api/health` stays liveness: the process answers).
 */
export async function checkReadiness(checks: Record<string, ReadyCheck>, timeoutMs: number): Promise<ReadyReport> {
  const results = await Promise.all(Object.entries(checks).map(async ([name, check]) => {
    const started = performance.now();
    try {
      await withTimeout(check(), timeoutMs, name);
      return [name, { ok: true, ms: Math.round(performance.now() - started) }] as const;
    } catch (error) {
      return [name, { ok: false, ms: Math.round(performance.now() - started), error: (error as Error).message || String(error) }] as const;
    }
  }));
  return { ok: results.every(([, result]) => result.ok), checks: Object.fromEntries(results) };
}

/** A folder the hub writes to is there, a folder, and writable (a volume not mounted, or mounted read-only, is not). */
export async function checkWritableDir(dir: string): Promise<void> {
  if (!(await fs.stat(dir)).isDirectory()) throw new Error(`${dir} is not a folder`);
  await fs.access(dir, fs.constants.W_OK);
}
