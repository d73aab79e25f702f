import Anser from 'anser';

export interface Segment {
  text: string;
  color?: string;
  background?: string;
  bold: boolean;
  italic: boolean;
  underline: boolean;
}

/**
 * What a terminal would show for a line rewritten with `\r` (a progress bar): each part overwrites
 * the start of what was there. Escape sequences are counted as text, which is close enough for
 * the usual `\r` + whole new line.
 */
export function applyCarriageReturns(line: string): string {
  if (!line.includes('\r')) return line;
  const parts = line.split('\r');
  let shown = '';
  for (const part of parts) shown = part + shown.slice(part.length);
  return shown;
}

/** Colour and style segments of a line with ANSI SGR codes, via anser (no HTML is built from text). */
export function toSegments(line: string): Segment[] {
  const shown = applyCarriageReturns(line);
  if (!shown.includes('\x1b')) return [{ text: shown, bold: false, italic: false, underline: false }];
  return Anser.ansiToJson(shown, { json: true, remove_empty: true, use_classes: false }).map((entry) => {
    const decorations = entry.decorations ?? [];
    return {
      text: entry.content,
      color: entry.fg ? `rgb(${entry.fg})` : undefined,
      background: entry.bg ? `rgb(${entry.bg})` : undefined,
      bold: decorations.includes('bold'),
      italic: decorations.includes('italic'),
      underline: decorations.includes('underline'),
    };
  });
}

/** Plain text of a line as shown (for search). */
export const plainText = (line: string) => Anser.ansiToText(applyCarriageReturns(line));
