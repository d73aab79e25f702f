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

export const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
