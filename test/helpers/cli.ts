import { spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../server/paths.js';

/** The built CLI as a user runs it (through the package's bin), with its output kept. */
export function startCli(hub: { url: string }, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin/run-hub.js'), ...args], {
    env: { ...process.env, HUB_URL: hub.url, HUB_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return { child, exited, stdout: () => Buffer.concat(stdout), stderr: () => stderr };
}
