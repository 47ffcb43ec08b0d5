import { WindowConfigError } from "./errors.js";

/** A span of time: milliseconds as a number, or text such as "250ms", "10s", "1m", "1h30m", "1d". */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;

/** Milliseconds in `d`; throws WindowConfigError unless it is a whole number of ms ≥ `min`. */
export function parseDuration(d: Duration, window: string, what: string, min = 1): number {
  let ms: number;
  if (typeof d === "number") {
    ms = d;
  } else {
    const text = d.trim();
    ms = 0;
    PART.lastIndex = 0;
    let matched = 0;
    while (PART.lastIndex < text.length) {
      const m = PART.exec(text);
      if (!m) { matched = -1; break; }
      ms += Number(m[1]) * UNIT_MS[m[2]!]!;
      matched++;
    }
    if (matched <= 0) ms = NaN;
  }
  if (!Number.isInteger(ms) || ms < min) {
    throw new WindowConfigError(window, `${what} ${JSON.stringify(d)} is not a duration of at least ${min} ms`, 'write e.g. 60000, "1m", "10s", "1h30m" or "250ms"');
  }
  return ms;
}
