import { CountMinSketch, type CountMinOptions } from "./countMin.js";
import { HyperLogLog, type HyperLogLogOptions } from "./hyperLogLog.js";
import { KllSketch, type KllOptions } from "./kll.js";
import { Reservoir } from "./reservoir.js";
import { RunningStats } from "./runningStats.js";
import { SynopsisStore } from "./store.js";

/** Persistence options every typed store accepts. */
export interface StoreOptions {
  /** Deserialized synopses kept per database handle, default 64. */
  cacheSize?: number;
}

/** A store of running statistics (count, sum, mean, variance, min, max) per key. */
export function runningStatsStore(name: string, opts: StoreOptions = {}): SynopsisStore<RunningStats> {
  return new SynopsisStore({ name, ...opts, create: () => new RunningStats(), deserialize: (b) => RunningStats.deserialize(b) });
}

/** A store of seeded reservoir samples of k items per key; the seed is `<processor>/<name>/<key>`. */
export function reservoirStore<T = unknown>(name: string, opts: StoreOptions & { k: number }): SynopsisStore<Reservoir<T>> {
  new Reservoir({ k: opts.k, seed: "" });
  return new SynopsisStore({ name, ...opts, create: (seed) => new Reservoir<T>({ k: opts.k, seed }), deserialize: (b) => Reservoir.deserialize<T>(b) });
}

/** A store of HyperLogLog distinct counts per key. */
export function hyperLogLogStore(name: string, opts: StoreOptions & HyperLogLogOptions = {}): SynopsisStore<HyperLogLog> {
  const p = new HyperLogLog(opts).p;
  return new SynopsisStore({ name, ...opts, create: () => new HyperLogLog({ p }), deserialize: (b) => HyperLogLog.deserialize(b) });
}

/** A store of Count-Min sketches (with optional top-k heavy hitters) per key. */
export function countMinStore(name: string, opts: StoreOptions & CountMinOptions = {}): SynopsisStore<CountMinSketch> {
  new CountMinSketch(opts);
  return new SynopsisStore({ name, ...opts, create: () => new CountMinSketch(opts), deserialize: (b) => CountMinSketch.deserialize(b) });
}

/** A store of KLL quantile sketches per key; coin flips are seeded with `<processor>/<name>/<key>`. */
export function quantilesStore(name: string, opts: StoreOptions & Omit<KllOptions, "seed"> = {}): SynopsisStore<KllSketch> {
  const k = new KllSketch(opts).k;
  return new SynopsisStore({ name, ...opts, create: (seed) => new KllSketch({ k, seed }), deserialize: (b) => KllSketch.deserialize(b) });
}
