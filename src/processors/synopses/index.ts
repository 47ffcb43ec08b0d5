/** Synopses: constant-space summaries of unbounded streams, with deterministic bytes and a store in `kappa_state`. */
export * from "./errors.js";
export * from "./synopsis.js";
export { DirtyRanges, isPaged, type PagedSynopsis } from "./paged.js";
export * from "./hash.js";
export * from "./stableJson.js";
export * from "./runningStats.js";
export * from "./reservoir.js";
export * from "./hyperLogLog.js";
export * from "./countMin.js";
export * from "./topK.js";
export * from "./kll.js";
export * from "./store.js";
export * from "./stores.js";
export * from "./aggregate.js";
