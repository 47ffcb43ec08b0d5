import type { KappaEvent } from "../define.js";
import type { StateContext } from "../synopses/store.js";
import { stableStringify } from "../synopses/stableJson.js";
import type { Acc } from "./aggregate.js";
import { WindowCore, type AddResult, type Window, type WindowOptions } from "./core.js";
import { parseDuration, type Duration } from "./duration.js";
import { WindowConfigError } from "./errors.js";
import { eventTimeReader, iso, type EventTimeOptions } from "./eventTime.js";
import { encodeKey, SEP, sortable } from "./keys.js";
import { recordLate } from "./late.js";
import { SCAN_BATCH } from "./state.js";

/** What a time-sliding window stores per key besides the buffered values: the newest time and the running aggregate. */
interface Summary extends Acc {
  /** newest event time of the key */
  m: number;
}

/**
 * The last `size` of event time per key: one result row per key over the events with
 * newest − size < time ≤ newest, where newest is the key's newest event time
 * (window_start = newest − size, window_end = newest, ISO). An event at or before the key's
 * current window start arrives too late to be in it and goes to kappa_late_events.
 * State per key holds the values of the events inside the window, so it grows with the event
 * rate times `size`, not with the stream; for long spans at high rates prefer a hopping window.
 */
export function slidingWindow<T = any, V = unknown, A = unknown>(
  opts: Omit<WindowOptions<T, V, A>, "synopsis" | "retain"> & EventTimeOptions<T> & { size: Duration },
): Window<T> {
  const core = new WindowCore<T, V, A>(opts, "per-key", "TEXT");
  const size = parseDuration(opts.size, opts.name, "size");
  const timeOf = eventTimeReader(opts.name, opts);
  if ((opts as WindowOptions).synopsis || (opts as WindowOptions).retain !== undefined) {
    throw new WindowConfigError(opts.name, "sliding windows take neither `synopsis` nor `retain`", "use a reducer, or a tumbling or hopping window for synopses");
  }
  const hasReducer = opts.reduce !== undefined;

  /*
   * State rows (kappa_state name `window:<name>`):
   *   "s" SEP key                       Summary: newest time and running count/sum/min/max (and reducer)
   *   "e" SEP key SEP time SEP seq      one buffered event's value, in time order
   */
  return {
    ...core.descriptor,
    add(event: KappaEvent<T>, ctx: StateContext): AddResult {
      const { db } = ctx;
      const { key, value } = core.begin(event, db);
      const t = timeOf(event);
      const ek = encodeKey(key);
      const summaryKey = `s${SEP}${ek}`;
      const events = `e${SEP}${ek}${SEP}`;
      const prev = core.state.get<Summary>(db, summaryKey);
      if (prev && t <= prev.m - size) {
        recordLate(db, core.name, key, prev.m - size, prev.m, t, event);
        return { windows: 0, late: 1 };
      }
      const sum: Summary = prev ?? { ...core.agg.empty(), m: t };
      core.state.put(db, `${events}${sortable(t)}${SEP}${sortable(event.seq)}`, stableStringify(value ?? null));
      core.agg.add(sum, value);
      let recompute = hasReducer && prev !== undefined; // a reducer cannot fold in out of time order
      if (t > sum.m) {
        sum.m = t;
        // Evict events now at or before the window start, undoing them from the running aggregate.
        const upTo = events + sortable(t - size + 1);
        for (;;) {
          const rows = core.state.range(db, events, upTo);
          for (const row of rows) {
            const v = JSON.parse(row.value) as unknown;
            sum.c--;
            if (typeof v === "number") {
              sum.n--;
              sum.s -= v;
              if (v === sum.lo || v === sum.hi) recompute = true;
            }
          }
          if (rows.length > 0) {
            core.state.deleteThrough(db, events, rows[rows.length - 1]!.key);
            recompute ||= hasReducer;
          }
          if (rows.length < SCAN_BATCH) break;
        }
      }
      const acc = recompute ? refold(ctx, events, sum.m) : sum;
      const out: Summary = { c: acc.c, n: acc.n, s: acc.n === 0 ? 0 : acc.s, lo: acc.lo, hi: acc.hi, m: sum.m };
      if (hasReducer) out.a = acc.a;
      core.state.put(db, summaryKey, core.agg.serialize(out));
      core.results.upsert(db, key, iso(out.m - size), iso(out.m), core.agg.columns(out), false);
      return { windows: 1, late: 0 };
    },
  };

  /** The aggregate over every buffered event of a key, in (time, seq) order. */
  function refold(ctx: StateContext, events: string, newest: number): Acc {
    const acc = core.agg.empty();
    const upTo = events + sortable(newest + 1);
    let from = events;
    for (;;) {
      const rows = core.state.range(ctx.db, from, upTo);
      for (const row of rows) core.agg.add(acc, JSON.parse(row.value) as V);
      if (rows.length < SCAN_BATCH) return acc;
      from = rows[rows.length - 1]!.key + SEP; // strictly after the last row read: keys never contain SEP at the end
    }
  }
}
