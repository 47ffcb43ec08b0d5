import type { Database } from "better-sqlite3";
import { iso } from "./eventTime.js";
import type { WindowState } from "./state.js";

/** A time window's progress: the newest event time seen and the watermark it implies. */
export interface Watermark {
  /** Newest event time seen (ISO). */
  maxEventTime: string;
  /** maxEventTime − lateness (ISO): windows ending at or before it are final. */
  watermark: string;
}

const META = "m";

/** The newest event time of a window definition, kept in its state row "m" and read on every event (a rollback may undo it). */
export class WatermarkTracker {
  readonly #state: WindowState;
  readonly #lateness: number;

  constructor(state: WindowState, lateness: number) {
    this.#state = state;
    this.#lateness = lateness;
  }

  /** Takes an event time into account; returns the watermark (ms), the one before, and whether it moved. */
  observe(db: Database, t: number): { watermark: number; previous: number; advanced: boolean } {
    const prev = this.#state.get<{ max: number }>(db, META)?.max;
    if (prev !== undefined && prev >= t) return { watermark: prev - this.#lateness, previous: prev - this.#lateness, advanced: false };
    this.#state.put(db, META, JSON.stringify({ max: t }));
    return { watermark: t - this.#lateness, previous: prev === undefined ? -Infinity : prev - this.#lateness, advanced: prev !== undefined };
  }
}

/** The stored watermark of a window, or null before its first event. */
export function readWatermark(state: WindowState, db: Database, lateness: number): Watermark | null {
  const max = state.get<{ max: number }>(db, META)?.max;
  return max === undefined ? null : { maxEventTime: iso(max), watermark: iso(max - lateness) };
}
