/** Joins continued pieces (a line over the maximum, delivered cut) back into whole lines. */
export function joinPieces(lines: string[], continued: number[]): string[] {
  const whole: string[] = [];
  let current = '';
  lines.forEach((line, index) => {
    current += line;
    if (!continued.includes(index)) {
      whole.push(current);
      current = '';
    }
  });
  return whole;
}
