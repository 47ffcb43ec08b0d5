import type { KappaEvent } from "../define.js";
import { EventTimeError } from "./errors.js";

/** Where a time window reads an event's time. By default `event.time`, the time the log stored it. */
export interface EventTimeOptions<T = any> {
  /** A field of `event.data` holding the time, as ISO text or epoch milliseconds (e.g. "ts"). */
  timeField?: string;
  /** Or a function returning the time (ISO text, epoch ms or Date); wins over `timeField`. */
  time?: (event: KappaEvent<T>) => string | number | Date;
}

/** Largest |ms| a JS Date holds. */
const MAX_TIME = 8.64e15;

/** Makes the function that turns an event into its event time in epoch ms (whole ms, floored). */
export function eventTimeReader<T>(window: string, opts: EventTimeOptions<T>): (e: KappaEvent<T>) => number {
  const field = opts.timeField;
  const pick = opts.time ?? (field === undefined ? (e: KappaEvent<T>) => e.time : (e: KappaEvent<T>) => (e.data as Record<string, unknown> | null)?.[field] as string | number);
  const where = opts.time ? "time()" : field === undefined ? "event.time" : `data.${field}`;
  return (e) => {
    const raw = pick(e);
    let ms: number;
    if (typeof raw === "number") ms = raw;
    else if (typeof raw === "string") ms = Date.parse(raw);
    else if (raw instanceof Date) ms = raw.getTime();
    else throw new EventTimeError(window, e.seq, `has no ${where}`, `give every event a ${where} (ISO text or epoch ms), or choose another field with timeField`);
    if (!Number.isFinite(ms) || Math.abs(ms) > MAX_TIME) {
      throw new EventTimeError(window, e.seq, `has ${where} = ${JSON.stringify(raw)}, which is not a time`, 'use ISO 8601 text ("2024-05-01T12:00:00Z") or epoch milliseconds');
    }
    return Math.floor(ms);
  };
}

/** ISO 8601 text of epoch ms, the form window bounds take in result rows. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
