/**
 * The thread that starts runners. `child_process.spawn` forks synchronously (36–150 ms for a
 * server this size, seconds for 50 at once): done here, it blocks this thread's loop, not the one
 * that serves logs. Messages: `spawn` → `spawned` | `failed`; `input` (a run for a runner's stdin);
 * and `exit` when a runner ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { finished } from 'node:stream';
import { parentPort } from 'node:worker_threads';

export type ToThread =
  | { type: 'spawn'; id: number; command: string[]; env: Record<string, string> }
  | { type: 'input'; id: number; input: string | null }
  | { type: 'close' };
export type FromThread =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'exit'; id: number; code: number | null; signal: string | null };

const children = new Map<number, ChildProcess>();
/** runs still being written to runners' stdin: the thread ends only once they are all handed over */
let writing = 0;
let closing = false;

function endIfDone(): void {
  if (closing && writing === 0) parentPort!.close();
}
const post = (message: FromThread) => parentPort!.postMessage(message);

/**
 * Runners starting at once compete for the CPU with the server (Node's start-up is ~100 ms of CPU
 * each): at most this many are starting at a time; the next starts when one says it is ready.
 */
const MAX_STARTING = 2;
const queue: Extract<ToThread, { type: 'spawn' }>[] = [];
let starting = 0;

function startNext(): void {
  while (starting < MAX_STARTING && queue.length > 0) {
    starting++;
    spawnRunner(queue.shift()!, () => {
      starting--;
      startNext();
    });
  }
}

function spawnRunner({ id, command, env }: Extract<ToThread, { type: 'spawn' }>, started: () => void): void {
  let settled = false;
  const settle = (message: FromThread) => {
    if (settled) return;
    settled = true;
    started();
    post(message);
  };
  let child: ChildProcess;
  try {
    child = spawn(command[0], command.slice(1), { detached: true, stdio: ['pipe', 'pipe', 'ignore'], env });
  } catch (error) {
    settle({ type: 'failed', id, message: (error as Error).message });
    return;
  }
  child.stdin?.on('error', () => {}); // a runner that dies is reported by its exit
  child.once('error', (error) => settle({ type: 'failed', id, message: error.message }));
  child.once('spawn', () => {
    children.set(id, child);
    child.unref();
  });
  // Ready once it says so (or once its stdout closes, for a runner that never does).
  const ready = () => {
    child.stdout?.destroy();
    if (child.pid !== undefined && children.has(id)) settle({ type: 'spawned', id, pid: child.pid });
  };
  child.stdout?.once('data', ready);
  child.stdout?.once('end', ready);
  child.once('exit', (code, signal) => {
    children.delete(id);
    if (!settled) settle({ type: 'failed', id, message: `the runner exited (${signal ?? code}) before it was ready` });
    else post({ type: 'exit', id, code, signal });
  });
}

parentPort!.on('message', (message: ToThread) => {
  if (message.type === 'spawn') {
    queue.push(message);
    startNext();
  }
  else if (message.type === 'close') {
    closing = true;
    endIfDone();
  } else {
    const stdin = children.get(message.id)?.stdin;
    if (!stdin) return;
    writing++;
    finished(stdin, () => {
      writing--;
      endIfDone();
    });
    if (message.input === null) stdin.end();
    else stdin.end(message.input);
  }
});
