import { roundRate } from "../../processors/index.js";

const WINDOW_MS = 5000;
const MIN_GAP_MS = 200;

/**
 * How fast each version's checkpoint moves, measured here from the view files over the last seconds.
 * It is in log positions per second, the unit of lag, so it gives an ETA; and it tells the rate when the
 * worker's own report is late (a worker busy rebuilding reports late, the file still moves).
 */
export class CheckpointRates {
  readonly #samples = new Map<string, { t: number; cp: number }[]>();

  /** Records a reading and returns the rate over the window (null until two readings a moment apart). */
  observe(key: string, checkpoint: number | null, now = Date.now()): number | null {
    if (checkpoint === null) {
      this.#samples.delete(key);
      return null;
    }
    let s = this.#samples.get(key);
    if (!s) this.#samples.set(key, (s = []));
    const last = s.at(-1);
    if (last && checkpoint < last.cp) s.length = 0; // a rebuilt file starts over
    if (!last || now - last.t >= MIN_GAP_MS || checkpoint < last.cp) s.push({ t: now, cp: checkpoint });
    while (s.length > 2 && now - s[1]!.t >= WINDOW_MS) s.shift();
    const first = s[0]!;
    const newest = s.at(-1)!;
    const dt = (newest.t - first.t) / 1000;
    return dt > 0 ? roundRate((newest.cp - first.cp) / dt) : null;
  }

  /** Forgets versions not in `keep` (retired or gone). */
  prune(keep: Set<string>): void {
    for (const k of this.#samples.keys()) if (!keep.has(k)) this.#samples.delete(k);
  }
}
