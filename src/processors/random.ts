import { createHash } from "node:crypto";

/** A deterministic generator of floats in [0, 1): the same seed gives the same sequence on every machine. */
export type Random = () => number;

/** Seeds a generator (sfc32) from any text, via SHA-256, so replays draw the same numbers. */
export function seededRandom(seed: string): Random {
  const h = createHash("sha256").update(seed).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}
