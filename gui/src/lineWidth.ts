import { plainText } from './ansi';

const TAB_STOP = 8;

/** East Asian wide and fullwidth characters and most emoji: two cells in a monospace font. */
function isWide(code: number): boolean {
  return (
    (code >= 0x1100 && code <= 0x115f) || (code >= 0x2e80 && code <= 0xa4cf) || (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) || (code >= 0xfe30 && code <= 0xfe4f) || (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) || (code >= 0x1f300 && code <= 0x1faff) || (code >= 0x20000 && code <= 0x3fffd)
  );
}

/**
 * The cells a line takes as shown (ANSI codes stripped, `\r` applied): a tab runs to the next stop
 * of 8, a wide character takes two. Combining marks count as one cell: erring wide only leaves
 * blank space under a wrapped line, never hides text.
 */
export function displayWidth(line: string): number {
  const shown = line.includes('\x1b') || line.includes('\r') ? plainText(line) : line;
  let cells = 0;
  for (let i = 0; i < shown.length; i++) {
    const code = shown.charCodeAt(i);
    if (code < 0x1100) cells += code === 9 ? TAB_STOP - (cells % TAB_STOP) : 1;
    else {
      const point = shown.codePointAt(i)!;
      if (point > 0xffff) i++;
      cells += isWide(point) ? 2 : 1;
    }
  }
  return cells;
}
