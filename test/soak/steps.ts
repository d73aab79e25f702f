import fs from 'node:fs';
import path from 'node:path';

/**
 * A step that prints at a random rate, seeded by its run id: multi-byte characters, `\r` progress
 * lines, lines longer than HUB_MAX_LINE_BYTES, stderr, writes cut anywhere (inside a character
 * too), sometimes no newline at the end, and exit codes 0 to 3. Never `\r\n` (the protocol drops
 * that `\r`, so the copy could not be compared byte for byte).
 */
const CHATTY = `
let s = Number(process.env.HUB_RUN_ID) * 7919 + 17;
const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
const words = ['plain ascii', 'é à ü ß €', '日本語のログ', '😀🚀 emoji', '\\x1b[31mred\\x1b[0m', 'tab\\there'];
const total = 40 + Math.floor(rnd() * 400);
let i = 0;
function tick() {
  let out = '';
  for (let k = 1 + Math.floor(rnd() * 25); k > 0 && i < total; k--, i++) {
    const r = rnd();
    if (r < 0.05) out += 'progress 10%\\rprogress 55%\\rprogress 100%\\n';
    else if (r < 0.08) out += 'long ' + 'x€日'.repeat(200 + Math.floor(rnd() * 800)) + '\\n';
    else out += 'line ' + i + ' ' + words[Math.floor(rnd() * words.length)] + '\\n';
  }
  const bytes = Buffer.from(out);
  for (let at = 0; at < bytes.length; ) {
    const length = 1 + Math.floor(rnd() * 96);
    (rnd() < 0.15 ? process.stderr : process.stdout).write(bytes.subarray(at, at + length));
    at += length;
  }
  if (i < total) return void setTimeout(tick, Math.floor(rnd() * 40));
  if (rnd() < 0.3) process.stdout.write('no newline at the end');
  process.exitCode = rnd() < 0.25 ? 1 + Math.floor(rnd() * 3) : 0;
}
tick();
`;

/**
 * Logs made to hurt a search: one line of MBs of one character without a newline (a match on
 * every byte), many short lines that all match, bytes that are not UTF-8, `\r` inside lines.
 */
const PATHOLOGICAL = `
const id = Number(process.env.HUB_RUN_ID);
const size = (1 + (id % 3)) * 1024 * 1024;
process.stdout.write('start of ' + id + '\\n');
// One in three: 20 MB more, more than socket buffers hold (a paused follower is still following when it is purged).
if (id % 3 === 0) for (let i = 0; i < 20000; i++) process.stdout.write(String(i).padStart(8, '0') + ' ' + 'b'.repeat(990) + '\\n');
for (let at = 0; at < size; at += 65536) process.stdout.write('a'.repeat(Math.min(65536, size - at)));
process.stdout.write('\\n' + 'a\\n'.repeat(20000));
process.stdout.write(Buffer.from([0xff, 0xfe, 0x0a, 0x61, 0xff, 0x61, 0x0a]));
process.stdout.write('A\\rAa carriage\\n' + 'aaaa'.repeat(3000) + '\\nend');
`;

/** A step whose child ignores SIGTERM: a cancel must end it with SIGKILL after the grace. */
const STUBBORN = `trap '' TERM; (trap '' TERM; sleep 4; echo "child done") & echo "stubborn $HUB_RUN_ID"; sleep 2; echo "parent done"; wait`;

export function soakPipelines(dir: string) {
  const chatty = path.join(dir, 'chatty.js');
  fs.writeFileSync(chatty, CHATTY);
  const node = [process.execPath, chatty];
  const pathological = path.join(dir, 'pathological.js');
  fs.writeFileSync(pathological, PATHOLOGICAL);
  return {
    chatty: { steps: [{ name: 'one', command: node }, { name: 'two', command: node }], scopes: { all: 'one', second: 'two' } },
    pathological: { steps: [{ name: 'flood', command: [process.execPath, pathological] }], scopes: { all: 'flood' } },
    stubborn: { steps: [{ name: 'prepare', command: node }, { name: 'hold', command: ['sh', '-c', STUBBORN] }], scopes: { all: 'prepare' } },
  };
}
