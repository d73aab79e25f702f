/**
 * The bench's pipeline step: writes 100-byte lines `<10-digit seq> <ms written, 13.3 digits> xxx…`
 * to stdout (the run's log file) or to a file, either at a steady rate or as fast as it can.
 * Usage: writer.js <count> <linesPerSecond|0 for flat out> [file]
 */
import fs from 'node:fs';
import { LINE_BYTES } from './lineFormat.js';

// A write every 5 ms at a steady rate: 50 writers ticking every millisecond would by themselves
// saturate a 2-core machine. Each line carries the time it was written, so latency is unaffected.
const TICK_MS = 5;
// Flat out: 1 MiB writes, as a step printing as fast as it can through a buffered stream would.
const FLAT_OUT_LINES = Math.floor((1024 * 1024) / LINE_BYTES);
const SEQ_DIGITS = 10;
const STAMP_AT = SEQ_DIGITS + 1;

// As a hub step, the numbers come from the project's settings (HUB_SETTING_COUNT, HUB_SETTING_RATE).
const count = Number(process.argv[2] ?? process.env.HUB_SETTING_COUNT);
const rate = Number(process.argv[3] ?? process.env.HUB_SETTING_RATE);
const file = process.argv[4];
const fd = file ? fs.openSync(file, 'a') : 1;
const now = () => performance.timeOrigin + performance.now();

// Lines are built in place in one buffer (a string per line would make the writer, not the hub,
// the bottleneck at a million lines a second on two cores).
let block = Buffer.alloc(0);

function ensureBlock(lines: number): void {
  if (block.length >= lines * LINE_BYTES) return;
  block = Buffer.alloc(lines * LINE_BYTES, 'x');
  for (let i = 0; i < lines; i++) {
    block[i * LINE_BYTES + SEQ_DIGITS] = 0x20;
    block[i * LINE_BYTES + STAMP_AT + 17] = 0x20;
    block[i * LINE_BYTES + LINE_BYTES - 1] = 0x0a;
  }
}

/** Writes lines `first..first+lines-1`, all stamped now, in one write. */
function writeLines(first: number, lines: number): void {
  ensureBlock(lines);
  const stamp = Buffer.from(now().toFixed(3).padStart(17, '0'), 'latin1');
  for (let i = 0; i < lines; i++) {
    const at = i * LINE_BYTES;
    let seq = first + i;
    for (let d = SEQ_DIGITS - 1; d >= 0; d--) {
      block[at + d] = 0x30 + (seq % 10);
      seq = Math.floor(seq / 10);
    }
    stamp.copy(block, at + STAMP_AT);
  }
  let written = 0;
  while (written < lines * LINE_BYTES) written += fs.writeSync(fd, block, written, lines * LINE_BYTES - written);
}

// HUB_SETTING_DELAY_MS: the first line waits this long, so subscribers joining as the run starts are
// all in place when lines come (the cost of joining is then not counted as the lines' latency).
const delayMs = Number(process.env.HUB_SETTING_DELAY_MS ?? 0);
if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));

if (rate === 0) {
  for (let seq = 1; seq <= count; seq += FLAT_OUT_LINES) writeLines(seq, Math.min(FLAT_OUT_LINES, count - seq + 1));
} else {
  const start = now();
  let written = 0;
  const tick = () => {
    const due = Math.min(count, Math.floor(((now() - start) / 1000) * rate) + 1);
    if (due > written) writeLines(written + 1, due - written);
    written = Math.max(written, due);
    if (written < count) setTimeout(tick, TICK_MS);
  };
  tick();
}
