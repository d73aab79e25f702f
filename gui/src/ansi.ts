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

/**
 * anser's 16 standard colours, by the rgb it reports, to the theme's own (style.css): a palette
 * readable on the light and the dark log alike. Other colours (256, true colour) stay as given.
 */
const THEMED: Record<string, string> = {
  '0, 0, 0': 'black', '187, 0, 0': 'red', '0, 187, 0': 'green', '187, 187, 0': 'yellow',
  '0, 0, 187': 'blue', '187, 0, 187': 'magenta', '0, 187, 187': 'cyan', '255,255,255': 'white',
  '85, 85, 85': 'bright-black', '255, 85, 85': 'bright-red', '0, 255, 0': 'bright-green', '255, 255, 85': 'bright-yellow',
  '85, 85, 255': 'bright-blue', '255, 85, 255': 'bright-magenta', '85, 255, 255': 'bright-cyan', '255, 255, 255': 'bright-white',
};
const colourOf = (rgb: string) => (THEMED[rgb] ? `var(--ansi-${THEMED[rgb]})` : `rgb(${rgb})`);

/** Colour and style segments of a line with ANSI SGR codes, via anser (no HTML is built from text). */
export function toSegments(line: string): Segment[] {
  const shown = applyCarriageReturns(line);
  if (!shown.includes('\x1b')) return [{ text: shown, bold: false, italic: false, underline: false }];
  return Anser.ansiToJson(shown, { json: true, remove_empty: true, use_classes: false }).map((entry) => {
    const decorations = entry.decorations ?? [];
    return {
      text: entry.content,
      color: entry.fg ? colourOf(entry.fg) : undefined,
      background: entry.bg ? colourOf(entry.bg) : undefined,
      bold: decorations.includes('bold'),
      italic: decorations.includes('italic'),
      underline: decorations.includes('underline'),
    };
  });
}

/** Plain text of a line as shown (for search). */
export const plainText = (line: string) => Anser.ansiToText(applyCarriageReturns(line));
