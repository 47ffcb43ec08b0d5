/** Small statistics and formatting helpers. */

/** The q-quantile (0..1) of a list of numbers, nearest-rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

/** p50, p99 and max of latencies in ms. */
export interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function latency(values: number[]): Latency {
  return { n: values.length, p50: round(quantile(values, 0.5), 3), p99: round(quantile(values, 0.99), 3), max: round(Math.max(...values), 3) };
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** 1234567 → "1,234,567". */
export function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : String(n);
}

/** Events per second of `count` events over `ms` milliseconds. */
export function rate(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
