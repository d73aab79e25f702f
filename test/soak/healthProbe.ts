import { spawn } from 'node:child_process';

/**
 * Asks `/api/health` every `intervalMs` for the whole soak and keeps each answer's time. A probe
 * that meets a server down for one of the soak's own restarts (no connection, or cut by the kill)
 * counts as `down`, not as latency.
 */
export class HealthProbe {
  readonly latenciesMs: number[] = [];
  down = 0;
  /** when the server last answered (or the soak last restarted it) */
  lastAnswerAt = Date.now();
  /** answers other than 200 while the server was up */
  failures: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();

  /** `url()`: the current server's address; `restarting()`: the soak is stopping or starting it */
  constructor(private readonly url: () => string, private readonly restarting: () => boolean, private readonly intervalMs = 150) {}

  /** A probe every `intervalMs` whether or not the last has answered: a stuck server gives many slow samples, not one. */
  start(): void {
    this.timer = setInterval(() => {
      const probe = this.probeOnce().finally(() => this.inFlight.delete(probe));
      this.inFlight.add(probe);
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.inFlight);
  }

  private async probeOnce(): Promise<void> {
    if (this.restarting()) {
      this.down++;
      this.lastAnswerAt = Date.now();
      return;
    }
    const started = performance.now();
    try {
      const response = await fetch(`${this.url()}/api/health`, { signal: AbortSignal.timeout(10_000) });
      await response.arrayBuffer();
      const ms = performance.now() - started;
      if (this.restarting()) this.down++;
      else if (response.status !== 200) this.failures.push(`/api/health answered ${response.status}`);
      else this.latenciesMs.push(ms);
      this.lastAnswerAt = Date.now();
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      // Refused or reset: the server was being killed or had not started yet.
      if (this.restarting() || /ECONNREFUSED|ECONNRESET|other side closed|UND_ERR_SOCKET/.test(cause)) this.down++;
      else {
        // No answer in time: the server is stuck, which is latency too.
        this.latenciesMs.push(performance.now() - started);
        this.failures.push(`/api/health: ${cause} after ${Math.round(performance.now() - started)} ms`);
      }
    }
  }

  /** p50, p99 and max of the answers' times, in ms */
  figures(): { samples: number; p50: number; p99: number; max: number } {
    const sorted = [...this.latenciesMs].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return { samples: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
  }
}

/**
 * A trivial HTTP server in a process of its own, probed beside the hub the same way: what the
 * machine alone adds to an answer's time (a loaded machine delays every process), so the soak
 * bounds what the hub adds on top rather than the machine's load.
 */
export async function startControlServer(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', `
    const server = require('node:http').createServer((request, response) => response.end('{"status":"ok"}'));
    server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the control server did not start in 10 s')), 10_000);
    child.stdout!.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve(Number(chunk.toString().trim()));
    });
    child.once('exit', (code) => reject(new Error(`the control server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}
