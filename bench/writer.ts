/**
 * The bench's pipeline step: writes 100-byte lines `<seq> <sent-ms> <padding>` to stdout (the run's
 * log file) or to a file, either at a steady rate or as fast as it can.
 * Usage: writer.js <count> <linesPerSecond|0 for flat out> [file]
 */
import fs from 'node:fs';

const LINE_BYTES = 100;
// A write every 5 ms at a steady rate: 50 writers ticking every millisecond would by themselves
// saturate a 2-core machine. Each line carries the time it was written, so latency is unaffected.
const TICK_MS = 5;
// As a hub step, the numbers come from the project's settings (HUB_SETTING_COUNT, HUB_SETTING_RATE).
const count = Number(process.argv[2] ?? process.env.HUB_SETTING_COUNT);
const rate = Number(process.argv[3] ?? process.env.HUB_SETTING_RATE);
const file = process.argv[4];
const fd = file ? fs.openSync(file, 'a') : 1;
const now = () => performance.timeOrigin + performance.now();

function line(seq: number): string {
  const head = `${seq} ${now().toFixed(3)} `;
  return head + 'x'.repeat(LINE_BYTES - head.length - 1) + '\n';
}

if (rate === 0) {
  // Flat out: a 1 MiB block of lines `<10-digit seq> 0 xxx…` whose numbers are patched in place.
  const perWrite = Math.floor((1024 * 1024) / LINE_BYTES);
  const block = Buffer.alloc(perWrite * LINE_BYTES, 'x');
  for (let i = 0; i < perWrite; i++) {
    block.write(' 0 ', i * LINE_BYTES + 10, 'latin1');
    block[i * LINE_BYTES + LINE_BYTES - 1] = 0x0a;
  }
  for (let seq = 1; seq <= count; seq += perWrite) {
    const lines = Math.min(perWrite, count - seq + 1);
    for (let i = 0; i < lines; i++) block.write(String(seq + i).padStart(10, '0'), i * LINE_BYTES, 'latin1');
    fs.writeSync(fd, block, 0, lines * LINE_BYTES);
  }
} else {
  const start = now();
  let written = 0;
  const tick = () => {
    const due = Math.min(count, Math.floor(((now() - start) / 1000) * rate) + 1);
    let chunk = '';
    while (written < due) chunk += line(++written);
    if (chunk) fs.writeSync(fd, chunk);
    if (written < count) setTimeout(tick, TICK_MS);
  };
  tick();
}
