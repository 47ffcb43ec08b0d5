import type { KappaEvent } from "../define.js";
import type { SynopsisAggregate } from "../synopses/aggregate.js";
import { stableStringify } from "../synopses/stableJson.js";
import type { Synopsis } from "../synopses/synopsis.js";
import { WindowConfigError, WindowValueError } from "./errors.js";

/** What a window computes per window and key, besides the event count. */
export interface AggregationOptions<T = any, V = unknown, A = unknown> {
  /**
   * The value of an event. Numbers feed `sum`, `min`, `max` and `mean`; other values only the
   * reducer or synopsis. Default: none for plain counts, `event.data` when a reducer or synopsis is given.
   */
  value?: (event: KappaEvent<T>) => V;
  /** A custom aggregate: folds each value into an accumulator that must be a JSON value. */
  reduce?: (acc: A, value: V) => A;
  /** The reducer's starting accumulator (copied for each window). */
  initial?: A;
  /** Combines two accumulators; session windows need it when a late event joins two sessions. */
  merge?: (a: A, b: A) => A;
  /** A synopsis per window (e.g. `distinctCount({ p: 12 })`) instead of a reducer. */
  synopsis?: SynopsisAggregate<any, V>;
}

/** The running aggregate of one window and key, as stored in kappa_state (short keys: it is written per event). */
export interface Acc {
  /** events */
  c: number;
  /** numeric values */
  n: number;
  /** their sum */
  s: number;
  lo: number | null;
  hi: number | null;
  /** reducer accumulator */
  a?: unknown;
}

/** The computed columns of a result row, in table order: count, sum, min, max, mean, value. */
export type ResultColumns = [number, number | null, number | null, number | null, number | null, string | null];

/** Count, sum, min, max, mean and the user's reducer over a window's values. */
export class Aggregator<T, V, A> {
  readonly #window: string;
  readonly #opts: AggregationOptions<T, V, A>;
  readonly #initial: string | undefined;
  readonly synopsis: SynopsisAggregate<Synopsis, V> | undefined;

  constructor(window: string, opts: AggregationOptions<T, V, A>) {
    this.#window = window;
    this.#opts = opts;
    this.synopsis = opts.synopsis;
    if (opts.reduce && opts.synopsis) throw new WindowConfigError(window, "has both `reduce` and `synopsis`", "keep one; use two windows for both");
    if (opts.reduce && opts.initial === undefined) throw new WindowConfigError(window, "has `reduce` without `initial`", "give the accumulator's starting value, e.g. initial: 0");
    this.#initial = opts.reduce ? stableStringify(opts.initial) : undefined;
  }

  /** True when results carry a reducer accumulator or synopsis in the `value` column. */
  get hasValueColumn(): boolean {
    return this.#opts.reduce !== undefined || this.synopsis !== undefined;
  }

  /** True when a reducer or synopsis can be merged (session windows need it). */
  get mergeable(): boolean {
    if (this.#opts.reduce) return this.#opts.merge !== undefined;
    if (this.synopsis) return this.synopsis.merge !== undefined;
    return true;
  }

  /** The value an event contributes, checked. */
  valueOf(event: KappaEvent<T>): V {
    const v = this.#opts.value ? this.#opts.value(event) : this.hasValueColumn ? (event.data as unknown as V) : (undefined as V);
    if (typeof v === "number" && !Number.isFinite(v)) throw new WindowValueError(this.#window, event.seq, v);
    return v;
  }

  /** A fresh accumulator (with its own copy of `initial`). */
  empty(): Acc {
    const acc: Acc = { c: 0, n: 0, s: 0, lo: null, hi: null };
    if (this.#initial !== undefined) acc.a = JSON.parse(this.#initial);
    return acc;
  }

  /** Folds one value in. */
  add(acc: Acc, v: V): void {
    acc.c++;
    if (typeof v === "number") {
      acc.n++;
      acc.s += v;
      if (acc.lo === null || v < acc.lo) acc.lo = v;
      if (acc.hi === null || v > acc.hi) acc.hi = v;
    }
    if (this.#opts.reduce) acc.a = this.#opts.reduce(acc.a as A, v);
  }

  /** The accumulator of the union of two windows' events. */
  merge(x: Acc, y: Acc): Acc {
    const out: Acc = {
      c: x.c + y.c,
      n: x.n + y.n,
      s: x.s + y.s,
      lo: x.lo === null ? y.lo : y.lo === null ? x.lo : Math.min(x.lo, y.lo),
      hi: x.hi === null ? y.hi : y.hi === null ? x.hi : Math.max(x.hi, y.hi),
    };
    if (this.#opts.reduce) out.a = this.#opts.merge!(x.a as A, y.a as A);
    return out;
  }

  /** The accumulator over a list of values, folded in order (sliding windows recompute this way). */
  fold(values: readonly V[]): Acc {
    const acc = this.empty();
    for (const v of values) this.add(acc, v);
    return acc;
  }

  /** State text of an accumulator: key order is fixed, the reducer's JSON is key-sorted. */
  serialize(acc: Acc): string {
    return acc.a === undefined ? JSON.stringify(acc) : stableStringify(acc);
  }

  /** Result-row columns; `synopsisResult` is the synopsis's JSON when the window has one. */
  columns(acc: Acc, synopsisResult?: unknown): ResultColumns {
    const value = this.#opts.reduce ? stableStringify(acc.a) : this.synopsis ? stableStringify(synopsisResult) : null;
    return [acc.c, acc.n > 0 ? acc.s : null, acc.lo, acc.hi, acc.n > 0 ? acc.s / acc.n : null, value];
  }
}
