import type { KappaEvent } from "../define.js";
import type { StateContext } from "../synopses/store.js";
import { stableStringify } from "../synopses/stableJson.js";
import { eventCount } from "./countWindow.js";
import { WindowCore, type AddResult, type Window, type WindowOptions } from "./core.js";
import { WindowConfigError } from "./errors.js";
import { encodeKey, SEP } from "./keys.js";

/** What a count-sliding window stores per key: events seen and the last `size` values, oldest first. */
interface Ring<V> {
  n: number;
  v: V[];
}

/**
 * The last `size` events per key: one result row per key (window_start/window_end are the key's
 * event ordinals, end exclusive) holding the aggregate over those events, updated with each event.
 * Keeps the last `size` values per key in state and recomputes over them, so min, max and reducers
 * are exact; values must be JSON values.
 */
export function countSlidingWindow<T = any, V = unknown, A = unknown>(opts: Omit<WindowOptions<T, V, A>, "synopsis" | "retain"> & { size: number }): Window<T> {
  const core = new WindowCore<T, V, A>(opts, "per-key", "INTEGER");
  const size = eventCount(opts.name, "size", opts.size);
  if ((opts as WindowOptions).synopsis || (opts as WindowOptions).retain !== undefined) {
    throw new WindowConfigError(opts.name, "sliding windows take neither `synopsis` nor `retain`", "use a reducer, or a tumbling or hopping window for synopses");
  }

  return {
    ...core.descriptor,
    add(event: KappaEvent<T>, ctx: StateContext): AddResult {
      const { db } = ctx;
      const { key, value } = core.begin(event, db);
      const sk = `r${SEP}${encodeKey(key)}`;
      const ring = core.state.get<Ring<V>>(db, sk) ?? { n: 0, v: [] };
      ring.n++;
      ring.v.push(value === undefined ? (null as V) : value);
      if (ring.v.length > size) ring.v.shift();
      core.state.put(db, sk, stableStringify(ring));
      const acc = core.agg.fold(ring.v);
      core.results.upsert(db, key, ring.n - ring.v.length, ring.n, core.agg.columns(acc), false);
      return { windows: 1, late: 0 };
    },
  };
}
