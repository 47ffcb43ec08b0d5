import { CountMinSketch, type CountMinOptions } from "./countMin.js";
import type { Hashable } from "./hash.js";
import { HyperLogLog, type HyperLogLogOptions } from "./hyperLogLog.js";
import { KllSketch } from "./kll.js";
import { Reservoir } from "./reservoir.js";
import { RunningStats } from "./runningStats.js";
import type { SynopsisKind } from "./store.js";
import type { Synopsis } from "./synopsis.js";

/**
 * A synopsis used as a window aggregate: how to add a value, what to show in the result row's
 * `value` column, and (for session windows, which merge) how to merge two.
 */
export interface SynopsisAggregate<S extends Synopsis, V = unknown> extends SynopsisKind<S> {
  /** Adds one value (what the window's `value` function returned). */
  add(s: S, value: V): void;
  /** The JSON shown in the result row's `value` column. */
  result(s: S): unknown;
  /** Folds `other` into `into`; required by session windows. */
  merge?(into: S, other: S): void;
}

/** Distinct values per window (HyperLogLog); the `value` column holds the rounded estimate. */
export function distinctCount(opts: HyperLogLogOptions = {}): SynopsisAggregate<HyperLogLog, Hashable | null | undefined> {
  const probe = new HyperLogLog(opts); // validates the options once, up front
  return {
    create: () => new HyperLogLog({ p: probe.p }),
    deserialize: (b) => HyperLogLog.deserialize(b),
    add: (s, v) => { if (v !== null && v !== undefined) s.add(v); },
    result: (s) => Math.round(s.estimate()),
    merge: (into, other) => { into.merge(other); },
  };
}

/** Heavy hitters per window (Count-Min with top-k); the `value` column holds `[{item, count}…]`. */
export function heavyHitters(opts: CountMinOptions & { topK: number }): SynopsisAggregate<CountMinSketch, Hashable | null | undefined> {
  new CountMinSketch(opts);
  return {
    create: () => new CountMinSketch(opts),
    deserialize: (b) => CountMinSketch.deserialize(b),
    add: (s, v) => { if (v !== null && v !== undefined) s.add(v); },
    result: (s) => s.topK(),
    merge: (into, other) => { into.merge(other); },
  };
}

/** Count, sum, mean, variance, min, max per window; the `value` column holds them as an object. */
export function statistics(): SynopsisAggregate<RunningStats, number | null | undefined> {
  return {
    create: () => new RunningStats(),
    deserialize: (b) => RunningStats.deserialize(b),
    add: (s, v) => { if (typeof v === "number") s.add(v); },
    result: (s) => s.toJSON(),
    merge: (into, other) => { into.merge(other); },
  };
}

/** A uniform sample of k values per window (seeded reservoir); the `value` column holds the sample. Not mergeable. */
export function sample<T = unknown>(k: number): SynopsisAggregate<Reservoir<T>, T> {
  new Reservoir({ k, seed: "" });
  return {
    create: (seed) => new Reservoir<T>({ k, seed }),
    deserialize: (b) => Reservoir.deserialize<T>(b),
    add: (s, v) => { s.add(v); },
    result: (s) => s.items,
  };
}

/** Quantiles per window (KLL); the `value` column holds `{"0.5": …, "0.99": …}` for the asked probabilities. */
export function quantiles(opts: { probabilities: readonly number[]; k?: number }): SynopsisAggregate<KllSketch, number | null | undefined> {
  const k = new KllSketch({ k: opts.k }).k;
  return {
    create: (seed) => new KllSketch({ k, seed }),
    deserialize: (b) => KllSketch.deserialize(b),
    add: (s, v) => { if (typeof v === "number") s.add(v); },
    result: (s) => s.quantiles(opts.probabilities),
    merge: (into, other) => { into.merge(other); },
  };
}
