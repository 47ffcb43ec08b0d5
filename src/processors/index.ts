/** Processors: the processor API, bundling and loading code, the runner that applies batches, and the worker. */
export * from "./define.js";
export * from "./random.js";
export * from "./validate.js";
export * from "./bundle.js";
export * from "./codeStore.js";
export * from "./load.js";
export * from "./sqlProcessor.js";
export * from "./apply.js";
export * from "./runner.js";
export * from "./outbox.js";
export * from "./derived.js";
export * from "./worker.js";
export * from "./deploy.js";
export * from "./shadow.js";
export * from "./verify.js";
export * from "./frozen.js";
