import { ByteReader, ByteWriter } from "./bytes.js";
import { SynopsisConfigError, SynopsisStateError } from "./errors.js";
import { hash64, type Hashable } from "./hash.js";
import { DirtyRanges, type PagedSynopsis } from "./paged.js";
import { TopK, type HeavyHitter } from "./topK.js";

const MAGIC = 0x43; // "C"
/** Bytes before the counters: magic, version, width, depth, k (u32 each), total (f64). */
const HEADER = 2 + 12 + 8;
/** Where the total sits in the header. */
const TOTAL_AT = 14;
/** The format is little-endian; on such machines (nearly all) counters are copied as one block. */
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** Options of a {@link CountMinSketch}: either ε/δ or an explicit width and depth. */
export interface CountMinOptions {
  /** Additive error as a fraction of the total count: estimates exceed the truth by at most ε·N… */
  epsilon?: number;
  /** …except with probability δ. */
  delta?: number;
  /** Counters per row; default ⌈e/ε⌉. */
  width?: number;
  /** Rows; default ⌈ln(1/δ)⌉. */
  depth?: number;
  /** Heavy hitters to track (0 = none). */
  topK?: number;
}

/**
 * Count-Min sketch: frequency estimates that never under-count and over-count by at most ε·N
 * with probability 1 − δ, in width × depth counters. With `topK`, also keeps the k most frequent
 * items seen (heavy hitters) by their estimates.
 */
export class CountMinSketch implements PagedSynopsis {
  readonly width: number;
  readonly depth: number;
  readonly #counters: Float64Array;
  readonly #top: TopK;
  #total = 0;
  #revision = 0;
  #dirty = new DirtyRanges(true);
  /** Length of the heavy-hitter text at the last takeDirty(), to know how far a change reaches. */
  #tailLength = -1;

  constructor(opts: CountMinOptions = {}) {
    const epsilon = opts.epsilon ?? 0.001;
    const delta = opts.delta ?? 0.01;
    if (!(epsilon > 0 && epsilon < 1) || !(delta > 0 && delta < 1)) {
      throw new SynopsisConfigError(`Count-Min needs 0 < epsilon < 1 and 0 < delta < 1, got ε=${epsilon} δ=${delta}`, "e.g. { epsilon: 0.001, delta: 0.01 }");
    }
    this.width = opts.width ?? Math.ceil(Math.E / epsilon);
    this.depth = opts.depth ?? Math.ceil(Math.log(1 / delta));
    const k = opts.topK ?? 0;
    if (!Number.isInteger(this.width) || !Number.isInteger(this.depth) || this.width < 1 || this.depth < 1 || this.width * this.depth > 1 << 24) {
      throw new SynopsisConfigError(`Count-Min width ${this.width} × depth ${this.depth} is not a positive size up to 2^24 counters`, "raise epsilon or delta");
    }
    if (!Number.isInteger(k) || k < 0 || k > 10_000) throw new SynopsisConfigError(`topK must be an integer from 0 to 10000, got ${k}`, "e.g. { topK: 10 }");
    this.#counters = new Float64Array(this.width * this.depth);
    this.#top = new TopK(k);
  }

  /** The guaranteed additive error factor, e / width. */
  get epsilon(): number {
    return Math.E / this.width;
  }

  /** Heavy hitters tracked. */
  get k(): number {
    return this.#top.k;
  }

  /** Sum of all counts added (N). */
  get total(): number {
    return this.#total;
  }

  /** See {@link Synopsis.revision}. */
  get revision(): number {
    return this.#revision;
  }

  /** Adds `count` (a positive integer, default 1) occurrences of an item; returns its new estimate. */
  add(item: Hashable, count = 1): number {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`Count-Min counts must be positive integers, got ${count}`);
    const [h1, h2] = hash64(item);
    let est = Infinity;
    for (let row = 0; row < this.depth; row++) {
      const i = row * this.width + column(h1, h2, row, this.width);
      const v = (this.#counters[i] = this.#counters[i]! + count);
      if (v < est) est = v;
      this.#dirty.add(HEADER + 8 * i, HEADER + 8 * i + 8);
    }
    this.#total += count;
    this.#dirty.add(TOTAL_AT, TOTAL_AT + 8);
    this.#top.offer(String(item), est);
    this.#revision++;
    return est;
  }

  /** Estimated count of an item: at least its true count. */
  estimate(item: Hashable): number {
    const [h1, h2] = hash64(item);
    let est = Infinity;
    for (let row = 0; row < this.depth; row++) {
      const v = this.#counters[row * this.width + column(h1, h2, row, this.width)]!;
      if (v < est) est = v;
    }
    return est;
  }

  /** The heavy hitters, most frequent first (ties by item). */
  topK(): HeavyHitter[] {
    return this.#top.list();
  }

  /** Adds another sketch of the same shape; heavy hitters are re-ranked on the merged counts. */
  merge(other: CountMinSketch): this {
    if (other.width !== this.width || other.depth !== this.depth) {
      throw new SynopsisConfigError(`cannot merge Count-Min sketches of ${this.width}×${this.depth} and ${other.width}×${other.depth}`, "use the same epsilon and delta for sketches you merge");
    }
    for (let i = 0; i < this.#counters.length; i++) this.#counters[i]! += other.#counters[i]!;
    this.#total += other.#total;
    this.#dirty.markAll();
    const candidates = new Set([...this.#top.list(), ...other.#top.list()].map((h) => h.item));
    for (const item of [...candidates].sort()) this.#top.offer(item, this.estimate(item));
    this.#revision++;
    return this;
  }

  /** A plain summary, for result rows and JSON. */
  toJSON(): { total: number; top: HeavyHitter[] } {
    return { total: this.#total, top: this.topK() };
  }

  /** See {@link Synopsis.serialize}: 8·width·depth bytes plus the heavy-hitter list. */
  serialize(): Uint8Array {
    const segs = this.segments();
    const out = new Uint8Array(segs.reduce((n, s) => n + s.length, 0));
    let at = 0;
    for (const s of segs) {
      out.set(s, at);
      at += s.length;
    }
    return out;
  }

  /** See {@link PagedSynopsis.segments}: header, counters (a view of live memory on little-endian machines), heavy hitters. */
  segments(): Uint8Array[] {
    const header = new ByteWriter(MAGIC, HEADER).u32(this.width).u32(this.depth).u32(this.#top.k).f64(this.#total).finish();
    let counters: Uint8Array;
    if (LITTLE_ENDIAN) counters = new Uint8Array(this.#counters.buffer, this.#counters.byteOffset, this.#counters.byteLength);
    else {
      const w = new ByteWriter(0, 2 + this.#counters.length * 8);
      for (const c of this.#counters) w.f64(c);
      counters = w.finish().subarray(2);
    }
    return [header, counters, this.#tail()];
  }

  /** See {@link PagedSynopsis.takeDirty}: the counters an add touched, the total, and the heavy-hitter text. */
  takeDirty(): number[] | "all" {
    const tail = this.#tail().length;
    const tailAt = HEADER + this.#counters.length * 8;
    if (tail !== this.#tailLength || this.#top.k > 0) this.#dirty.add(tailAt, tailAt + Math.max(tail, this.#tailLength));
    this.#tailLength = tail;
    return this.#dirty.take();
  }

  /** The heavy hitters as length-prefixed JSON. */
  #tail(): Uint8Array {
    const text = new TextEncoder().encode(JSON.stringify(this.#top.list().map((h) => [h.item, h.count])));
    const out = new Uint8Array(4 + text.length);
    new DataView(out.buffer).setUint32(0, text.length, true);
    out.set(text, 4);
    return out;
  }

  /** Reads bytes written by {@link CountMinSketch.serialize}. */
  static deserialize(bytes: Uint8Array): CountMinSketch {
    const r = new ByteReader(bytes, MAGIC, "CountMinSketch");
    const width = r.u32(), depth = r.u32(), topK = r.u32();
    const s = new CountMinSketch({ width, depth, topK });
    s.#total = r.f64();
    if (LITTLE_ENDIAN) s.#counters.set(new Float64Array(r.bytes(s.#counters.length * 8).buffer));
    else for (let i = 0; i < s.#counters.length; i++) s.#counters[i] = r.f64();
    let top: [string, number][];
    try {
      top = JSON.parse(r.text()) as [string, number][];
    } catch (cause) {
      throw new SynopsisStateError("stored CountMinSketch heavy hitters are not JSON", { cause });
    }
    r.end();
    for (const [item, count] of top) s.#top.offer(item, count);
    s.#dirty = new DirtyRanges(false);
    s.#tailLength = s.#tail().length;
    return s;
  }
}

/** Column of an item in one row: double hashing (Kirsch–Mitzenmacher) from two 32-bit hashes. */
function column(h1: number, h2: number, row: number, width: number): number {
  return ((h1 + Math.imul(row, h2)) >>> 0) % width;
}
