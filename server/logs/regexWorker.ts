import { parentPort } from 'node:worker_threads';

/**
 * Runs a user's regular expression over chunks of log text in a thread of its own, so a pattern
 * that backtracks for minutes ties up this thread, which the server terminates at its deadline,
 * and never the event loop. Answers each chunk with the indexes where matches start.
 */
export interface RegexJob {
  source: string;
  flags: string;
  text: string;
}

parentPort?.on('message', ({ source, flags, text }: RegexJob) => {
  const starts: number[] = [];
  for (const match of text.matchAll(new RegExp(source, `${flags}gm`))) starts.push(match.index);
  parentPort!.postMessage(starts);
});
