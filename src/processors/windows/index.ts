/**
 * Windows for processors: tumbling, hopping, sliding and session windows over event time or event
 * counts, with state in the view's SQLite file (fixed memory, exact on replay) and results in a
 * table users query.
 */
export * from "./errors.js";
export * from "./duration.js";
export * from "./eventTime.js";
export type { AggregationOptions } from "./aggregate.js";
export type { Window, WindowOptions, AddResult } from "./core.js";
export { DEFAULT_KEY } from "./core.js";
export type { Watermark } from "./watermark.js";
export { tumblingWindow, hoppingWindow, type TimeWindow, type TimeWindowOptions } from "./timeWindow.js";
export { countTumblingWindow, countHoppingWindow } from "./countWindow.js";
export { countSlidingWindow } from "./slidingCount.js";
export { slidingWindow } from "./slidingTime.js";
export { sessionWindow } from "./session.js";
export type { StateContext } from "../synopses/store.js";
