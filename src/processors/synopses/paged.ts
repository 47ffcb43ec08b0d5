import type { Synopsis } from "./synopsis.js";

/**
 * A synopsis that knows which bytes of its serialized form a change touched, so the store can
 * rewrite a few pages instead of serializing and comparing the whole state on every event
 * (a Count-Min sketch is often 100 KiB; an add changes a few counters).
 */
export interface PagedSynopsis extends Synopsis {
  /** The serialized form as consecutive views over live memory (no copy): their concatenation equals `serialize()`. */
  segments(): Uint8Array[];
  /** Byte ranges [from, to) of the serialized form changed since the last call, or "all"; then forgets them. */
  takeDirty(): number[] | "all";
}

/** True when a synopsis offers {@link PagedSynopsis}. */
export function isPaged(s: Synopsis): s is PagedSynopsis {
  return typeof (s as Partial<PagedSynopsis>).takeDirty === "function" && typeof (s as Partial<PagedSynopsis>).segments === "function";
}

/** Beyond this many ranges, "all" is cheaper to track (and keeps memory bounded when nothing takes them). */
const MAX_RANGES = 4096;

/** The changed byte ranges of a {@link PagedSynopsis}, as flat [from, to, from, to, …]. */
export class DirtyRanges {
  #all: boolean;
  readonly #ranges: number[] = [];

  /** `all`: a fresh synopsis, which nothing stored yet; false for one just read back. */
  constructor(all: boolean) {
    this.#all = all;
  }

  /** Marks [from, to) changed. */
  add(from: number, to: number): void {
    if (this.#all) return;
    if (this.#ranges.length >= MAX_RANGES * 2) {
      this.markAll();
      return;
    }
    this.#ranges.push(from, to);
  }

  /** Marks everything changed (a merge, a change of length). */
  markAll(): void {
    this.#all = true;
    this.#ranges.length = 0;
  }

  /** The ranges changed since the last call, then forgets them. */
  take(): number[] | "all" {
    const out = this.#all ? "all" : this.#ranges.slice();
    this.#all = false;
    this.#ranges.length = 0;
    return out;
  }
}

/** Copies bytes [from, to) of the concatenation of `segments`. */
export function sliceSegments(segments: readonly Uint8Array[], from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(to - from);
  let base = 0;
  for (const seg of segments) {
    const end = base + seg.length;
    if (end > from && base < to) {
      const a = Math.max(from, base), b = Math.min(to, end);
      out.set(seg.subarray(a - base, b - base), a - from);
    }
    base = end;
    if (base >= to) break;
  }
  return out;
}
