import type { ChildProcess } from 'node:child_process';

/** What Node prints when a rejection or exception nobody handled ends the process (or warns of one). */
const FATAL = /unhandledRejection|UnhandledPromiseRejection|uncaughtException|Unhandled (promise )?rejection|Uncaught|^Node\.js v\d+/im;

/**
 * After one server process is gone: it must have ended by the soak's own signal (SIGKILL: killed;
 * SIGTERM: exit code 0), logged no error, and printed nothing of an unhandled rejection or uncaught
 * exception.
 * `expected` null: the soak did not stop it (it died by itself).
 */
export function checkServerEnd(process: ChildProcess, output: string, expected: NodeJS.Signals | null): string[] {
  const mismatches: string[] = [];
  const how = process.signalCode ?? `exit code ${process.exitCode}`;
  const fine = expected === 'SIGKILL' ? process.signalCode === 'SIGKILL' : expected === 'SIGTERM' ? process.exitCode === 0 : false;
  // Its errors and its last lines (without the warnings of webhook retries, which are many).
  const lines = output.split('\n').filter((line) => !/"level":(30|40)/.test(line) || /shutting down/.test(line));
  // After SIGTERM, exit code 1 is server/main.ts's forced exit 5 s on: something held the close (a connection mid-request).
  const hint = expected === 'SIGTERM' && process.exitCode === 1 ? ' (the forced exit after 5 s: the close did not finish)' : '';
  if (!fine) mismatches.push(`the server ended by ${how}${expected ? ` after ${expected}` : ' by itself'}${hint}: ${lines.join('\n').slice(-2000)}`);
  // An error the server logged (a 500 among them, with its stack): each is a finding.
  for (const line of output.split('\n').filter((l) => /"level":(50|60)/.test(l))) mismatches.push(`the server logged an error: ${line.slice(0, 1500)}`);
  const fatal = FATAL.exec(output);
  if (fatal) mismatches.push(`the server printed "${fatal[0]}": ${output.slice(Math.max(0, fatal.index - 300), fatal.index + 1200)}`);
  return mismatches;
}
