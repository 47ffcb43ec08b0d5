/**
 * MurmurHash3 x86_128 (Austin Appleby's reference algorithm) in 32-bit integer arithmetic:
 * deterministic on every machine and fast enough to hash each event. Sketches take 64 of its bits.
 */

const encoder = new TextEncoder();
/** Scratch space for UTF-8 encoding; grows to the longest value hashed, bounded by MAX_SCRATCH. */
let scratch = new Uint8Array(256);
const MAX_SCRATCH = 1 << 16;

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function word(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** MurmurHash3_x86_128 of the first `len` bytes: four unsigned 32-bit words h1..h4. */
export function murmur3x86_128(bytes: Uint8Array, len = bytes.length, seed = 0): [number, number, number, number] {
  let h1 = seed | 0, h2 = seed | 0, h3 = seed | 0, h4 = seed | 0;
  const blocks = len & ~15;
  for (let i = 0; i < blocks; i += 16) {
    let k1 = word(bytes, i), k2 = word(bytes, i + 4), k3 = word(bytes, i + 8), k4 = word(bytes, i + 12);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2); h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3); h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4); h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1); h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  let k1 = 0, k2 = 0, k3 = 0, k4 = 0;
  const t = blocks;
  /* eslint-disable no-fallthrough */
  switch (len & 15) {
    case 15: k4 ^= bytes[t + 14]! << 16;
    case 14: k4 ^= bytes[t + 13]! << 8;
    case 13: k4 ^= bytes[t + 12]!;
      k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1); h4 ^= k4;
    case 12: k3 ^= bytes[t + 11]! << 24;
    case 11: k3 ^= bytes[t + 10]! << 16;
    case 10: k3 ^= bytes[t + 9]! << 8;
    case 9: k3 ^= bytes[t + 8]!;
      k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4); h3 ^= k3;
    case 8: k2 ^= bytes[t + 7]! << 24;
    case 7: k2 ^= bytes[t + 6]! << 16;
    case 6: k2 ^= bytes[t + 5]! << 8;
    case 5: k2 ^= bytes[t + 4]!;
      k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3); h2 ^= k2;
    case 4: k1 ^= bytes[t + 3]! << 24;
    case 3: k1 ^= bytes[t + 2]! << 16;
    case 2: k1 ^= bytes[t + 1]! << 8;
    case 1: k1 ^= bytes[t]!;
      k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2); h1 ^= k1;
  }
  h1 ^= len; h2 ^= len; h3 ^= len; h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0; h3 = (h3 + h1) | 0; h4 = (h4 + h1) | 0;
  h1 = fmix(h1); h2 = fmix(h2); h3 = fmix(h3); h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0; h3 = (h3 + h1) | 0; h4 = (h4 + h1) | 0;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** A value sketches accept: hashed by its text, so `7` and `"7"` are the same item. */
export type Hashable = string | number;

/**
 * 64 bits of MurmurHash3 of a value's UTF-8 text, as two unsigned 32-bit halves [hi, lo].
 * Reuses one scratch buffer so hashing allocates nothing per call.
 */
export function hash64(value: Hashable): [number, number] {
  const text = typeof value === "string" ? value : String(value);
  if (text.length * 3 > scratch.length && scratch.length < MAX_SCRATCH) {
    scratch = new Uint8Array(Math.min(MAX_SCRATCH, Math.max(text.length * 3, scratch.length * 2)));
  }
  let bytes = scratch;
  let len: number;
  if (text.length * 3 <= scratch.length) {
    len = encoder.encodeInto(text, scratch).written;
  } else {
    bytes = encoder.encode(text);
    len = bytes.length;
  }
  const [h1, h2] = murmur3x86_128(bytes, len);
  return [h1, h2];
}
