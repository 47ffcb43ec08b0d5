/**
 * Encodings for `kappa_state` keys. Range scans ("every window ending by the watermark", "every
 * buffered event of this key") need keys whose text order is numeric order, and user keys that can
 * never run into the separators.
 */

const NEGATIVE_BIAS = 9e15; // below 2^53, above the 8.64e15 ms a JS Date can reach

/** Fixed-width text of an integer in ±8.64e15 (every JS time in ms) that sorts in numeric order. */
export function sortable(n: number): string {
  return n < 0 ? `0${String(NEGATIVE_BIAS + n).padStart(16, "0")}` : `1${String(n).padStart(16, "0")}`;
}

/** Inverse of {@link sortable}. */
export function unsortable(s: string): number {
  const v = Number(s.slice(1));
  return s[0] === "0" ? v - NEGATIVE_BIAS : v;
}

/** Separator between key parts: JSON-encoded user keys never contain a raw control character. */
export const SEP = "\u0001";

/** A user key as it appears inside state keys. */
export function encodeKey(key: string): string {
  return JSON.stringify(key);
}

/** Inverse of {@link encodeKey}. */
export function decodeKey(encoded: string): string {
  return JSON.parse(encoded) as string;
}
