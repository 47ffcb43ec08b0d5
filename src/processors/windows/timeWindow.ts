import type { KappaEvent } from "../define.js";
import type { StateContext } from "../synopses/store.js";
import type { Acc } from "./aggregate.js";
import { WindowCore, type AddResult, type Window, type WindowOptions } from "./core.js";
import { parseDuration, type Duration } from "./duration.js";
import { WindowConfigError } from "./errors.js";
import { eventTimeReader, iso, type EventTimeOptions } from "./eventTime.js";
import { decodeKey, encodeKey, SEP, sortable, unsortable } from "./keys.js";
import { recordLate } from "./late.js";
import { readWatermark, type Watermark, WatermarkTracker } from "./watermark.js";

/** Options of event-time windows: where the time is, and how late an event may arrive. */
export interface TimeWindowOptions<T = any, V = unknown, A = unknown> extends WindowOptions<T, V, A>, EventTimeOptions<T> {
  /** How far behind the newest event time an event may be and still count (default 0). */
  lateness?: Duration;
}

/** A window over event time, which also reports its watermark. */
export interface TimeWindow<T = any> extends Window<T> {
  /** Newest event time seen and the watermark (newest − lateness), or null before the first event. */
  watermark(ctx: StateContext): Watermark | null;
}

/** Fixed-size, non-overlapping windows of event time: [k·size, (k+1)·size), aligned to the Unix epoch. */
export function tumblingWindow<T = any, V = unknown, A = unknown>(opts: TimeWindowOptions<T, V, A> & { size: Duration }): TimeWindow<T> {
  const size = parseDuration(opts.size, opts.name, "size");
  return fixedWindows(opts, size, size);
}

/** Overlapping windows of `size`, one starting every `advance`: [k·advance, k·advance + size). */
export function hoppingWindow<T = any, V = unknown, A = unknown>(opts: TimeWindowOptions<T, V, A> & { size: Duration; advance: Duration }): TimeWindow<T> {
  const size = parseDuration(opts.size, opts.name, "size");
  const advance = parseDuration(opts.advance, opts.name, "advance");
  if (advance > size) throw new WindowConfigError(opts.name, `advance ${advance} ms exceeds size ${size} ms, so events would fall between windows`, "use advance ≤ size");
  return fixedWindows(opts, size, advance);
}

/*
 * State rows (kappa_state name `window:<name>`):
 *   "m"                                   the watermark tracker
 *   "w" SEP end SEP start SEP key          the accumulator of one open window and key
 * Open windows sort by end, so closing everything up to the watermark is one range scan.
 */
const OPEN = `w${SEP}`;

function fixedWindows<T, V, A>(opts: TimeWindowOptions<T, V, A>, size: number, advance: number): TimeWindow<T> {
  const core = new WindowCore<T, V, A>(opts, "per-window", "TEXT");
  const lateness = parseDuration(opts.lateness ?? 0, opts.name, "lateness", 0);
  const timeOf = eventTimeReader(opts.name, opts);
  const tracker = new WatermarkTracker(core.state, lateness);
  const stateKey = (start: number, end: number, key: string) => `${OPEN}${sortable(end)}${SEP}${sortable(start)}${SEP}${encodeKey(key)}`;

  function closeUpTo(ctx: StateContext, watermark: number): void {
    const { db } = ctx;
    const upTo = OPEN + sortable(watermark + 1);
    core.state.drain(db, OPEN, upTo, (rows) => {
      for (const row of rows) {
        const [, , start, key] = row.key.split(SEP) as [string, string, string, string];
        const user = decodeKey(key);
        core.results.finalize(db, user, iso(unsortable(start)));
        core.dropSynopsis(ctx, row.key);
        core.afterClose(ctx, user);
      }
    });
  }

  return {
    ...core.descriptor,
    watermark: (ctx) => readWatermark(core.state, ctx.db, lateness),
    add(event: KappaEvent<T>, ctx: StateContext): AddResult {
      const { db } = ctx;
      const { key, value } = core.begin(event, db);
      const t = timeOf(event);
      const { watermark, previous, advanced } = tracker.observe(db, t);
      const result: AddResult = { windows: 0, late: 0 };
      // Windows containing t: starts j·advance with t − size < j·advance ≤ t.
      for (let j = Math.floor((t - size) / advance) + 1; j * advance <= t; j++) {
        const start = j * advance;
        const end = start + size;
        if (end <= watermark) {
          recordLate(db, core.name, key, start, end, t, event);
          result.late++;
          continue;
        }
        const sk = stateKey(start, end, key);
        const acc = core.state.get<Acc>(db, sk) ?? core.agg.empty();
        const cols = core.addTo(ctx, sk, acc, value);
        core.state.put(db, sk, core.agg.serialize(acc));
        core.results.upsert(db, key, iso(start), iso(end), cols, false);
        result.windows++;
      }
      // Window ends are k·advance + size: scan only when the watermark crossed one.
      if (advanced && Math.floor((watermark - size) / advance) > Math.floor((previous - size) / advance)) closeUpTo(ctx, watermark);
      return result;
    },
  };
}
