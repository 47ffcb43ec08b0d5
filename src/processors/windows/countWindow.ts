import type { KappaEvent } from "../define.js";
import type { StateContext } from "../synopses/store.js";
import type { Acc } from "./aggregate.js";
import { WindowCore, type AddResult, type Window, type WindowOptions } from "./core.js";
import { WindowConfigError } from "./errors.js";
import { encodeKey, SEP, sortable } from "./keys.js";

/** Windows of every `size` events per key, by arrival order: [k·size, (k+1)·size) in the key's event ordinals. */
export function countTumblingWindow<T = any, V = unknown, A = unknown>(opts: WindowOptions<T, V, A> & { size: number }): Window<T> {
  return countWindows(opts, opts.size, opts.size);
}

/** Windows of `size` events per key, one starting every `advance` events: [k·advance, k·advance + size). */
export function countHoppingWindow<T = any, V = unknown, A = unknown>(opts: WindowOptions<T, V, A> & { size: number; advance: number }): Window<T> {
  return countWindows(opts, opts.size, opts.advance);
}

/** Checks an event count option. */
export function eventCount(window: string, what: string, n: unknown): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new WindowConfigError(window, `${what} ${String(n)} is not a whole number of events from 1 to 1000000`, `e.g. ${what}: 100`);
  }
  return n;
}

/*
 * State rows (kappa_state name `window:<name>`):
 *   "n" SEP key              events seen for the key (its next ordinal)
 *   "w" SEP key SEP start    the accumulator of one open window
 * A window closes when its last event arrives, so there is no watermark and nothing is late.
 */
function countWindows<T, V, A>(opts: WindowOptions<T, V, A>, sizeOpt: number, advanceOpt: number): Window<T> {
  const core = new WindowCore<T, V, A>(opts, "per-window", "INTEGER");
  const size = eventCount(opts.name, "size", sizeOpt);
  const advance = eventCount(opts.name, "advance", advanceOpt);
  if (advance > size) throw new WindowConfigError(opts.name, `advance ${advance} exceeds size ${size}, so events would fall between windows`, "use advance ≤ size");

  return {
    ...core.descriptor,
    add(event: KappaEvent<T>, ctx: StateContext): AddResult {
      const { db } = ctx;
      const { key, value } = core.begin(event, db);
      const ek = encodeKey(key);
      const counterKey = `n${SEP}${ek}`;
      const i = core.state.get<number>(db, counterKey) ?? 0;
      core.state.put(db, counterKey, String(i + 1));
      let windows = 0;
      for (let j = Math.max(0, Math.floor((i - size) / advance) + 1); j * advance <= i; j++) {
        const start = j * advance;
        const end = start + size;
        const sk = `w${SEP}${ek}${SEP}${sortable(start)}`;
        const acc = core.state.get<Acc>(db, sk) ?? core.agg.empty();
        const cols = core.addTo(ctx, sk, acc, value);
        const final = i === end - 1;
        core.results.upsert(db, key, start, end, cols, final);
        if (final) {
          core.state.delete(db, sk);
          core.dropSynopsis(ctx, sk);
          core.afterClose(ctx, key);
        } else {
          core.state.put(db, sk, core.agg.serialize(acc));
        }
        windows++;
      }
      return { windows, late: 0 };
    },
  };
}
