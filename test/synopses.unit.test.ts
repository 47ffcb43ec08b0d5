import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../src/processors/random.js";
import {
  CountMinSketch, HyperLogLog, KllSketch, murmur3x86_128, Reservoir, RunningStats, stableStringify, SynopsisConfigError, SynopsisStateError,
} from "../src/processors/synopses/index.js";

const hex = (w: number[]) => w.map((x) => x.toString(16).padStart(8, "0")).join("");
const utf8 = (s: string) => new TextEncoder().encode(s);

describe("MurmurHash3 x86_128", () => {
  it("matches the reference implementation's test vectors", () => {
    expect(hex(murmur3x86_128(utf8(""), undefined, 0))).toBe("00000000000000000000000000000000");
    expect(hex(murmur3x86_128(utf8("Hello, world!"), undefined, 123))).toBe("61c9129e5a1aacd7a41621629e37c886");
    expect(hex(murmur3x86_128(utf8("Hello, world!"), undefined, 321))).toBe("d5fbdcb3c26c4193045880c5a7170f0f");
    expect(hex(murmur3x86_128(utf8("xxxxxxxxxxxxxxxxxxxxxxxxxxxx"), undefined, 123))).toBe("5e40bab278825a164cf929d31fec6047");
    expect(hex(murmur3x86_128(utf8("http://en.wikipedia.org/wiki/MurmurHash"), undefined, 0))).toBe("d297dc9fad5b8f84f8264f326908431a");
  });
});

describe("RunningStats", () => {
  it("equals a direct computation, and merging halves equals one pass", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 200 }), fc.nat(), (xs, cut) => {
      const s = new RunningStats();
      for (const x of xs) s.add(x);
      const n = xs.length;
      const mean = xs.reduce((a, b) => a + b, 0) / n;
      const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      expect(s.count).toBe(n);
      expect(s.sum).toBe(xs.reduce((a, b) => a + b, 0));
      expect(s.min).toBe(Math.min(...xs));
      expect(s.max).toBe(Math.max(...xs));
      expect(s.mean!).toBeCloseTo(mean, 6);
      expect(s.variance!).toBeCloseTo(variance, 0);
      const k = cut % (n + 1);
      const a = new RunningStats(), b = new RunningStats();
      xs.slice(0, k).forEach((x) => a.add(x));
      xs.slice(k).forEach((x) => b.add(x));
      a.merge(b);
      expect(a.count).toBe(n);
      expect(Math.abs(a.variance! - variance)).toBeLessThanOrEqual(1e-6 * Math.max(1, variance));
      expect(RunningStats.deserialize(s.serialize()).serialize()).toEqual(s.serialize());
    }), { numRuns: 200 });
  });
});

describe("HyperLogLog", () => {
  it("stays within 3 standard errors (3 × 1.04/√m) over many random sets", () => {
    const rnd = seededRandom("hll-test");
    let sets = 0;
    for (const p of [8, 10, 12, 14]) {
      for (const n of [1, 10, 100, 1_000, 5_000, 20_000, 60_000]) {
        const h = new HyperLogLog({ p });
        const prefix = `${p}/${n}/${Math.floor(rnd() * 1e9)}/`;
        for (let i = 0; i < n; i++) h.add(prefix + i);
        const err = Math.abs(h.estimate() - n) / n;
        expect(err, `p=${p} n=${n} estimate=${h.estimate()}`).toBeLessThanOrEqual(3 * h.standardError);
        sets++;
      }
    }
    expect(sets).toBe(28);
  });

  it("counts duplicates once, merges as a union, and round-trips its bytes", () => {
    const a = new HyperLogLog({ p: 12 }), b = new HyperLogLog({ p: 12 }), both = new HyperLogLog({ p: 12 });
    for (let i = 0; i < 3000; i++) {
      a.add(`u${i}`); a.add(`u${i}`);
      b.add(`u${i + 1500}`);
      both.add(`u${i}`); both.add(`u${i + 1500}`);
    }
    expect(Math.abs(a.estimate() - 3000) / 3000).toBeLessThan(3 * a.standardError);
    a.merge(b);
    expect(a.serialize()).toEqual(both.serialize());
    expect(HyperLogLog.deserialize(both.serialize()).estimate()).toBe(both.estimate());
    expect(() => a.merge(new HyperLogLog({ p: 10 }))).toThrow(SynopsisConfigError);
    expect(() => HyperLogLog.deserialize(new Uint8Array([0x48, 1, 12, 0]))).toThrow(SynopsisStateError);
    expect(() => new HyperLogLog({ p: 30 })).toThrow(SynopsisConfigError);
  });
});

describe("Count-Min sketch with top-k", () => {
  /** A Zipf-like stream over 2000 items, deterministic. */
  function zipfStream(n: number, seed: string): string[] {
    const rnd = seededRandom(seed);
    return Array.from({ length: n }, () => `item${Math.floor(2000 * rnd() ** 3)}`);
  }

  it("never under-counts, and over-counts by more than εN for at most a δ share of items", () => {
    const cms = new CountMinSketch({ epsilon: 0.002, delta: 0.01, topK: 10 });
    const stream = zipfStream(100_000, "cms");
    const truth = new Map<string, number>();
    for (const x of stream) {
      cms.add(x);
      truth.set(x, (truth.get(x) ?? 0) + 1);
    }
    expect(cms.total).toBe(stream.length);
    let beyond = 0;
    for (const [item, count] of truth) {
      const est = cms.estimate(item);
      expect(est).toBeGreaterThanOrEqual(count);
      if (est - count > cms.epsilon * cms.total) beyond++;
    }
    expect(beyond / truth.size).toBeLessThanOrEqual(0.01);
    const trueTop = [...truth].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10).map(([item]) => item);
    expect(cms.topK().map((h) => h.item)).toEqual(trueTop);
    expect(cms.topK()).toHaveLength(10);
    expect(CountMinSketch.deserialize(cms.serialize()).serialize()).toEqual(cms.serialize());
  });

  it("merges two sketches of the same shape into the sketch of both streams", () => {
    const [a, b, both] = [0, 1, 2].map(() => new CountMinSketch({ epsilon: 0.01, delta: 0.01, topK: 5 })) as [CountMinSketch, CountMinSketch, CountMinSketch];
    const s1 = zipfStream(5000, "m1"), s2 = zipfStream(5000, "m2");
    s1.forEach((x) => { a.add(x); both.add(x); });
    s2.forEach((x) => { b.add(x); both.add(x); });
    a.merge(b);
    expect(a.total).toBe(both.total);
    for (const x of ["item0", "item1", "item7", "item1999"]) expect(a.estimate(x)).toBe(both.estimate(x));
    expect(a.topK().map((h) => h.item)).toEqual(both.topK().map((h) => h.item));
  });
});

describe("Reservoir (Algorithm L, seeded per item)", () => {
  const fill = (r: Reservoir<number>, from: number, to: number) => { for (let i = from; i < to; i++) r.add(i); };

  it("keeps k items; the same seed and stream give the same sample; a restart mid-stream changes nothing", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 3000 }), fc.nat(), fc.string(), (k, n, cutAt, seed) => {
      const a = new Reservoir<number>({ k, seed }), b = new Reservoir<number>({ k, seed });
      fill(a, 0, n);
      fill(b, 0, n);
      expect(a.items).toEqual(b.items);
      expect(a.items).toHaveLength(Math.min(k, n));
      expect(new Set(a.items).size).toBe(a.items.length);
      const cut = n === 0 ? 0 : cutAt % n;
      const first = new Reservoir<number>({ k, seed });
      fill(first, 0, cut);
      const resumed = Reservoir.deserialize<number>(first.serialize());
      fill(resumed, cut, n);
      expect(resumed.serialize()).toEqual(a.serialize());
    }), { numRuns: 150 });
  });

  it("samples uniformly: every item is kept with probability k/n", () => {
    const k = 10, n = 200, runs = 3000;
    const hits = new Array<number>(n).fill(0);
    for (let s = 0; s < runs; s++) {
      const r = new Reservoir<number>({ k, seed: `uniform/${s}` });
      fill(r, 0, n);
      for (const x of r.items) hits[x]!++;
    }
    const expected = (runs * k) / n; // 150 per item; binomial sd ≈ 12
    for (const h of hits) expect(Math.abs(h - expected)).toBeLessThan(6 * Math.sqrt(expected));
    const early = hits.slice(0, 50).reduce((a, b) => a + b, 0), late = hits.slice(150).reduce((a, b) => a + b, 0);
    expect(Math.abs(early - late)).toBeLessThan(0.1 * early);
  });
});

describe("KLL quantiles", () => {
  /** True rank of x in sorted data: the share of values ≤ x. */
  const trueRank = (sorted: number[], x: number) => {
    let lo = 0, hi = sorted.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid]! <= x) lo = mid + 1; else hi = mid; }
    return lo / sorted.length;
  };

  it("estimates quantiles within 2.5% rank error in bounded space, for shuffled and sorted streams", () => {
    const rnd = seededRandom("kll");
    const shuffled = Array.from({ length: 60_000 }, () => Math.round(rnd() ** 2 * 1e6));
    for (const data of [shuffled, [...shuffled].sort((a, b) => a - b), [...shuffled].sort((a, b) => b - a)]) {
      const s = new KllSketch({ k: 200, seed: "t" });
      for (const x of data) s.add(x);
      const sorted = [...data].sort((a, b) => a - b);
      for (const q of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) {
        expect(Math.abs(trueRank(sorted, s.quantile(q)!) - q), `q=${q}`).toBeLessThanOrEqual(0.025);
        expect(Math.abs(s.rank(sorted[Math.floor(q * sorted.length)]!) - q)).toBeLessThanOrEqual(0.025);
      }
      expect(s.quantile(0)).toBe(sorted[0]);
      expect(s.quantile(1)).toBe(sorted[sorted.length - 1]);
      expect(s.serialize().length).toBeLessThan(8 * 3 * 200 + 200);
    }
  });

  it("resumes from its bytes exactly, and merges halves into a sketch of the whole", () => {
    const rnd = seededRandom("kll2");
    const data = Array.from({ length: 20_000 }, () => rnd() * 100);
    const whole = new KllSketch({ seed: "s" });
    data.forEach((x) => whole.add(x));
    const first = new KllSketch({ seed: "s" });
    data.slice(0, 7777).forEach((x) => first.add(x));
    const resumed = KllSketch.deserialize(first.serialize());
    data.slice(7777).forEach((x) => resumed.add(x));
    expect(resumed.serialize()).toEqual(whole.serialize());
    const a = new KllSketch({ seed: "a" }), b = new KllSketch({ seed: "b" });
    data.slice(0, 10_000).forEach((x) => a.add(x));
    data.slice(10_000).forEach((x) => b.add(x));
    a.merge(b);
    expect(a.count).toBe(data.length);
    const sorted = [...data].sort((x, y) => x - y);
    for (const q of [0.1, 0.5, 0.9]) expect(Math.abs(trueRank(sorted, a.quantile(q)!) - q)).toBeLessThanOrEqual(0.025);
  });
});

describe("stable JSON", () => {
  it("sorts object keys at every depth", () => {
    expect(stableStringify({ b: 1, a: [{ d: 1, c: 2 }], c: { z: null, y: "x" } })).toBe('{"a":[{"c":2,"d":1}],"b":1,"c":{"y":"x","z":null}}');
  });
});
