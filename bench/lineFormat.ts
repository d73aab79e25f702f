/**
 * The writer's lines, `<seq> <ms written> xxx…` (100 bytes with the newline), read straight from
 * bytes: at a million lines a second, decoding and splitting strings in the bench's client process
 * would measure the client, not the hub.
 */
export const LINE_BYTES = 100;

const SPACE = 0x20;
const DOT = 0x2e;

export interface ParsedLine {
  seq: number;
  sent: number;
}

/** Parses the line starting at `at` into `into`; false if it is not a writer's line. */
export function parseLine(bytes: Uint8Array, at: number, end: number, into: ParsedLine): boolean {
  let position = at;
  let seq = 0;
  while (position < end && bytes[position] !== SPACE) {
    const digit = bytes[position++] - 0x30;
    if (digit < 0 || digit > 9) return false;
    seq = seq * 10 + digit;
  }
  if (position === at || position >= end) return false;
  let sent = 0;
  let scale = 0;
  for (position++; position < end && bytes[position] !== SPACE; position++) {
    if (bytes[position] === DOT) {
      scale = 1;
      continue;
    }
    const digit = bytes[position] - 0x30;
    if (digit < 0 || digit > 9) return false;
    sent = sent * 10 + digit;
    if (scale > 0) scale *= 10;
  }
  into.seq = seq;
  into.sent = scale > 0 ? sent / scale : sent;
  return true;
}
