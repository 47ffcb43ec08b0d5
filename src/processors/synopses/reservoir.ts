import { seededRandom, type Random } from "../random.js";
import { ByteReader, ByteWriter } from "./bytes.js";
import { SynopsisConfigError, SynopsisStateError } from "./errors.js";
import { stableStringify } from "./stableJson.js";
import type { Synopsis } from "./synopsis.js";

const MAGIC = 0x52; // "R"
/** Half a step of the generator's 2^-32 grid: keeps draws inside (0, 1) so log() stays finite. */
const HALF_STEP = 1 / 8589934592;

/** Options of a {@link Reservoir}. */
export interface ReservoirOptions {
  /** Sample size: the reservoir never holds more items. */
  k: number;
  /** Seed text; the persistence helper uses `<processor>/<name>/<key>`. */
  seed: string;
}

/**
 * A uniform random sample of k items from a stream of unknown length (Li's Algorithm L, which
 * draws only when an item is accepted). Every draw comes from a generator seeded with
 * `<seed>/<index of the item>`, so the sample depends only on the seed and the stream: a restart
 * from persisted state continues exactly as an uninterrupted run would.
 */
export class Reservoir<T = unknown> implements Synopsis {
  readonly k: number;
  readonly seed: string;
  #items: T[] = [];
  #n = 0;
  #next = 0;
  #w = 1;
  #revision = 0;

  constructor(opts: ReservoirOptions) {
    if (!Number.isInteger(opts.k) || opts.k < 1 || opts.k > 1_000_000) {
      throw new SynopsisConfigError(`reservoir size k must be an integer from 1 to 1000000, got ${opts.k}`, "pass e.g. { k: 100 }");
    }
    this.k = opts.k;
    this.seed = opts.seed;
  }

  /** See {@link Synopsis.revision}. */
  get revision(): number {
    return this.#revision;
  }

  /** Items seen so far. */
  get seen(): number {
    return this.#n;
  }

  /** The sample: min(k, seen) items. Do not mutate. */
  get items(): readonly T[] {
    return this.#items;
  }

  /** Offers one item; returns the slot it now occupies, or -1 when it was not sampled. Items must be JSON values. */
  add(item: T): number {
    const i = this.#n++;
    this.#revision++;
    if (i < this.k) {
      this.#items.push(item);
      if (i === this.k - 1) {
        const rnd = this.#random(i);
        this.#w = Math.exp(Math.log(rnd() + HALF_STEP) / this.k);
        this.#next = i + this.#skip(rnd);
      }
      return i;
    }
    if (i !== this.#next) return -1;
    const rnd = this.#random(i);
    const slot = Math.floor(rnd() * this.k);
    this.#items[slot] = item;
    this.#w *= Math.exp(Math.log(rnd() + HALF_STEP) / this.k);
    this.#next = i + this.#skip(rnd);
    return slot;
  }

  #random(i: number): Random {
    return seededRandom(`${this.seed}/${i}`);
  }

  /** How far ahead the next accepted item is: geometric with success probability 1 − w. */
  #skip(rnd: Random): number {
    const gap = Math.floor(Math.log(rnd() + HALF_STEP) / Math.log1p(-this.#w));
    return (Number.isFinite(gap) ? gap : 0) + 1;
  }

  /** See {@link Synopsis.serialize}: bounded by k items, whatever the stream's length. */
  serialize(): Uint8Array {
    return new ByteWriter(MAGIC, 64)
      .u32(this.k).f64(this.#n).f64(this.#next).f64(this.#w)
      .text(this.seed).text(stableStringify(this.#items))
      .finish();
  }

  /** Reads bytes written by {@link Reservoir.serialize}. */
  static deserialize<T = unknown>(bytes: Uint8Array): Reservoir<T> {
    const r = new ByteReader(bytes, MAGIC, "Reservoir");
    const k = r.u32();
    const n = r.f64(), next = r.f64(), w = r.f64();
    const seed = r.text();
    let items: T[];
    try {
      items = JSON.parse(r.text()) as T[];
    } catch (cause) {
      throw new SynopsisStateError("stored Reservoir items are not JSON", { cause });
    }
    r.end();
    const s = new Reservoir<T>({ k, seed });
    if (!Array.isArray(items) || items.length > k || items.length !== Math.min(k, n)) {
      throw new SynopsisStateError(`stored Reservoir holds ${Array.isArray(items) ? items.length : "no"} items for k=${k}, seen=${n}`);
    }
    s.#items = items; s.#n = n; s.#next = next; s.#w = w;
    return s;
  }
}
