import { seededRandom } from "../random.js";
import { ByteReader, ByteWriter } from "./bytes.js";
import { SynopsisConfigError, SynopsisStateError } from "./errors.js";
import type { Synopsis } from "./synopsis.js";

const MAGIC = 0x4b; // "K"
/** Each level's capacity shrinks by this factor going down from the top (the KLL paper's c). */
const SHRINK = 2 / 3;

/** Options of a {@link KllSketch}. */
export interface KllOptions {
  /** Accuracy: rank error ≈ 1.7/k (k = 200: about ±1%); memory ≈ 3k numbers. 8..65535, default 200. */
  k?: number;
  /** Seed text for the compaction coin flips; the persistence helper uses `<processor>/<name>/<key>`. */
  seed?: string;
}

/**
 * Quantiles of a stream of numbers (the KLL sketch of Karnin, Lang and Liberty): rank error about
 * 1.7/k in O(k) space, mergeable. Each compaction flips one coin drawn from a generator seeded with
 * `<seed>/<compactions so far>`, so a restored sketch continues exactly like the original.
 */
export class KllSketch implements Synopsis {
  readonly k: number;
  readonly seed: string;
  /** levels[h] holds items of weight 2^h. */
  #levels: number[][] = [[]];
  #n = 0;
  #compactions = 0;
  #min = Infinity;
  #max = -Infinity;
  #revision = 0;

  constructor(opts: KllOptions = {}) {
    const k = opts.k ?? 200;
    if (!Number.isInteger(k) || k < 8 || k > 65535) throw new SynopsisConfigError(`KLL k must be an integer from 8 to 65535, got ${k}`, "k = 200 gives about ±1% rank error");
    this.k = k;
    this.seed = opts.seed ?? "";
  }

  /** See {@link Synopsis.revision}. */
  get revision(): number { return this.#revision; }
  /** Numbers added. */
  get count(): number { return this.#n; }
  /** Smallest number added, or null. */
  get min(): number | null { return this.#n > 0 ? this.#min : null; }
  /** Largest number added, or null. */
  get max(): number | null { return this.#n > 0 ? this.#max : null; }

  /** Adds one finite number. */
  add(x: number): this {
    if (!Number.isFinite(x)) throw new RangeError(`KllSketch.add needs a finite number, got ${x}`);
    this.#levels[0]!.push(x);
    this.#n++;
    if (x < this.#min) this.#min = x;
    if (x > this.#max) this.#max = x;
    if (this.#held() >= this.#room()) this.#compress();
    this.#revision++;
    return this;
  }

  /** Folds another sketch (of any k; this one's k rules) into this one. */
  merge(other: KllSketch): this {
    other.#levels.forEach((items, h) => {
      while (this.#levels.length <= h) this.#levels.push([]);
      this.#levels[h]!.push(...items);
    });
    this.#n += other.#n;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
    while (this.#held() >= this.#room()) this.#compress();
    this.#revision++;
    return this;
  }

  /** Estimated share of the numbers that are ≤ x. */
  rank(x: number): number {
    if (this.#n === 0) return 0;
    let below = 0;
    this.#levels.forEach((items, h) => { for (const v of items) if (v <= x) below += 2 ** h; });
    return below / this.#n;
  }

  /** Estimated q-quantile (0 ≤ q ≤ 1), or null before the first number. */
  quantile(q: number): number | null {
    if (this.#n === 0) return null;
    if (q <= 0) return this.#min;
    if (q >= 1) return this.#max;
    const weighted: [number, number][] = [];
    this.#levels.forEach((items, h) => { for (const v of items) weighted.push([v, 2 ** h]); });
    weighted.sort((a, b) => a[0] - b[0]);
    const total = weighted.reduce((s, [, w]) => s + w, 0);
    let seen = 0;
    for (const [v, w] of weighted) {
      seen += w;
      if (seen >= q * total) return v;
    }
    return this.#max;
  }

  /** Several quantiles at once, keyed by q, for result rows and JSON. */
  quantiles(qs: readonly number[]): Record<string, number | null> {
    return Object.fromEntries(qs.map((q) => [String(q), this.quantile(q)]));
  }

  #capacity(h: number): number {
    return Math.ceil(this.k * SHRINK ** (this.#levels.length - h - 1)) + 1;
  }

  /** Items held in all levels. */
  #held(): number {
    return this.#levels.reduce((n, items) => n + items.length, 0);
  }

  /** Items the sketch may hold before it compacts: the sum of the level capacities. */
  #room(): number {
    let room = 0;
    for (let h = 0; h < this.#levels.length; h++) room += this.#capacity(h);
    return room;
  }

  /**
   * Compacts the lowest level over capacity (lazily, as in Liberty's reference): sort, keep every
   * other item starting at a coin-flipped offset, and promote those a level, doubling their weight.
   */
  #compress(): void {
    for (let h = 0; h < this.#levels.length; h++) {
      const items = this.#levels[h]!;
      if (items.length < this.#capacity(h)) continue;
      if (h + 1 === this.#levels.length) this.#levels.push([]);
      items.sort((a, b) => a - b);
      const keepOdd = items.length % 2 === 1 ? items.pop() : undefined;
      const offset = seededRandom(`${this.seed}/${this.#compactions++}`)() < 0.5 ? 0 : 1;
      for (let i = offset; i < items.length; i += 2) this.#levels[h + 1]!.push(items[i]!);
      this.#levels[h] = keepOdd === undefined ? [] : [keepOdd];
      return;
    }
  }

  /** See {@link Synopsis.serialize}: O(k) numbers whatever the stream's length. */
  serialize(): Uint8Array {
    const w = new ByteWriter(MAGIC, 64).u32(this.k).f64(this.#n).f64(this.#compactions).f64(this.#min).f64(this.#max).text(this.seed).u32(this.#levels.length);
    for (const items of this.#levels) {
      w.u32(items.length);
      for (const v of items) w.f64(v);
    }
    return w.finish();
  }

  /** Reads bytes written by {@link KllSketch.serialize}. */
  static deserialize(bytes: Uint8Array): KllSketch {
    const r = new ByteReader(bytes, MAGIC, "KllSketch");
    const k = r.u32();
    const n = r.f64(), compactions = r.f64(), min = r.f64(), max = r.f64();
    const s = new KllSketch({ k, seed: r.text() });
    const levels = r.u32();
    if (levels < 1 || levels > 64) throw new SynopsisStateError(`stored KllSketch has ${levels} levels`);
    s.#levels = Array.from({ length: levels }, () => Array.from({ length: r.u32() }, () => r.f64()));
    r.end();
    s.#n = n; s.#compactions = compactions; s.#min = min; s.#max = max;
    return s;
  }
}
