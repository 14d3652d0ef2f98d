// Summaries of repeated measurements: median, p99 and range, and the ratio to a limit measured alongside.

export interface Stats {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Nearest-rank percentile: with fewer than 100 samples, p99 is the maximum. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function summarize(xs: number[]): Stats {
  if (xs.length === 0) throw new Error("no samples");
  return { n: xs.length, median: median(xs), p99: percentile(xs, 99), min: Math.min(...xs), max: Math.max(...xs) };
}
