export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export interface Summary {
  p50: number;
  p99: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile([...sorted], 50), p99: percentile([...sorted], 99), max: sorted[sorted.length - 1] ?? NaN };
}

/** Per-round summaries into one: the median round's p50 and p99 (one bad round of a shared machine moves neither), the overall max. */
export function medianOfRounds(rounds: Summary[]): Summary {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
  return { p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)), max: Math.max(...rounds.map((r) => r.max)) };
}

export const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
