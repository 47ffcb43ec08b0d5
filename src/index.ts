/** Kappa's library entry: what processor modules import. */
export { defineProcessor } from "./processors/define.js";
export type { ProcessorDefinition, ProcessorContext, KappaEvent, Handler, ErrorPolicy } from "./processors/define.js";
export { seededRandom, type Random } from "./processors/random.js";
export * from "./processors/windows/index.js";
export * from "./processors/synopses/index.js";
