import type { KappaEvent } from "../define.js";
import { stableStringify } from "../synopses/stableJson.js";
import type { StateContext } from "../synopses/store.js";
import type { Acc } from "./aggregate.js";
import { WindowCore, type AddResult } from "./core.js";
import { parseDuration, type Duration } from "./duration.js";
import { WindowConfigError } from "./errors.js";
import { eventTimeReader, iso } from "./eventTime.js";
import { decodeKey, encodeKey, SEP, sortable, unsortable } from "./keys.js";
import { recordLate } from "./late.js";
import type { TimeWindow, TimeWindowOptions } from "./timeWindow.js";
import { readWatermark, WatermarkTracker } from "./watermark.js";

/** One open session of a key: [start, end) with end = last event time + gap, and its accumulator. */
interface Session {
  s: number;
  e: number;
  a: Acc;
}

/** A key's sessions row: its open sessions, by start. */
interface KeyState {
  sessions: Session[];
}

/**
 * Session windows per key: events less than `gap` apart belong to one session
 * [first event, last event + gap). An event that bridges two open sessions merges them (which
 * needs `merge` for a reducer). A session is final once the watermark passes its end.
 * An event whose time is before the watermark goes to kappa_late_events (with the window
 * [time, time + gap) it would have started): it might belong to a session that is already final,
 * and final rows never change. Closed sessions leave no state behind.
 */
export function sessionWindow<T = any, V = unknown, A = unknown>(opts: TimeWindowOptions<T, V, A> & { gap: Duration }): TimeWindow<T> {
  const core = new WindowCore<T, V, A>(opts, "per-window", "TEXT");
  const gap = parseDuration(opts.gap, opts.name, "gap");
  const lateness = parseDuration(opts.lateness ?? 0, opts.name, "lateness", 0);
  const timeOf = eventTimeReader(opts.name, opts);
  const tracker = new WatermarkTracker(core.state, lateness);
  if (!core.agg.mergeable) {
    throw new WindowConfigError(opts.name, "sessions merge when an event joins two of them, and this reducer or synopsis cannot merge", "give `merge: (a, b) => …` for the reducer, or use a mergeable synopsis");
  }

  /*
   * State rows (kappa_state name `window:<name>`):
   *   "m"                              the watermark tracker
   *   "k" SEP key                      KeyState: the key's open sessions, by start
   *   "c" SEP end SEP key SEP start    close index: open sessions by end, for the watermark scan
   * A session's synopsis (if any) is stored under "x" SEP key SEP start.
   */
  const sessionsKey = (ek: string) => `k${SEP}${ek}`;
  const closeKey = (ek: string, x: Session) => `c${SEP}${sortable(x.e)}${SEP}${ek}${SEP}${sortable(x.s)}`;
  const synKey = (ek: string, start: number) => `x${SEP}${ek}${SEP}${sortable(start)}`;
  const CLOSE = `c${SEP}`;

  const load = (ctx: StateContext, ek: string): KeyState => core.state.get<KeyState>(ctx.db, sessionsKey(ek)) ?? { sessions: [] };

  function save(ctx: StateContext, ek: string, ks: KeyState): void {
    if (ks.sessions.length === 0) core.state.delete(ctx.db, sessionsKey(ek));
    else core.state.put(ctx.db, sessionsKey(ek), stableStringify(ks));
  }

  function closeUpTo(ctx: StateContext, watermark: number): void {
    const { db } = ctx;
    const upTo = CLOSE + sortable(watermark + 1);
    core.state.drain(db, CLOSE, upTo, (rows) => {
      const touched = new Map<string, KeyState>();
      for (const row of rows) {
        const [, , ek, start] = row.key.split(SEP) as [string, string, string, string];
        const ks = touched.get(ek) ?? load(ctx, ek);
        touched.set(ek, ks);
        const s = unsortable(start);
        ks.sessions = ks.sessions.filter((x) => x.s !== s);
        const user = decodeKey(ek);
        core.results.finalize(db, user, iso(s));
        core.dropSynopsis(ctx, synKey(ek, s));
        core.afterClose(ctx, user);
      }
      for (const [ek, ks] of touched) save(ctx, ek, ks);
    });
  }

  return {
    ...core.descriptor,
    watermark: (ctx) => readWatermark(core.state, ctx.db, lateness),
    add(event: KappaEvent<T>, ctx: StateContext): AddResult {
      const { db } = ctx;
      const { key, value } = core.begin(event, db);
      const t = timeOf(event);
      const ek = encodeKey(key);
      const { watermark, advanced } = tracker.observe(db, t);
      let result: AddResult;
      if (t < watermark) {
        recordLate(db, core.name, key, t, t + gap, t, event);
        result = { windows: 0, late: 1 };
      } else {
        const ks = load(ctx, ek);
        const joined = ks.sessions.filter((x) => x.s < t + gap && x.e > t);
        const merged: Session = { s: t, e: t + gap, a: joined[0]?.a ?? core.agg.empty() };
        for (const x of joined) {
          merged.s = Math.min(merged.s, x.s);
          merged.e = Math.max(merged.e, x.e);
        }
        const sk = synKey(ek, merged.s);
        for (const [i, x] of joined.entries()) {
          if (i > 0) merged.a = core.agg.merge(merged.a, x.a);
          core.state.delete(db, closeKey(ek, x));
          core.mergeSynopsis(ctx, synKey(ek, x.s), sk);
          if (x.s !== merged.s) core.results.remove(db, key, iso(x.s));
        }
        const cols = core.addTo(ctx, sk, merged.a, value);
        ks.sessions = ks.sessions.filter((x) => !joined.includes(x));
        ks.sessions.push(merged);
        ks.sessions.sort((a, b) => a.s - b.s);
        save(ctx, ek, ks);
        core.state.put(db, closeKey(ek, merged), "1");
        core.results.upsert(db, key, iso(merged.s), iso(merged.e), cols, false);
        result = { windows: 1, late: 0 };
      }
      if (advanced) closeUpTo(ctx, watermark);
      return result;
    },
  };
}
