/** The log: JetStream connection, the append-only stream, appending and reading from an offset. */
export * from "./connect.js";
export * from "./stream.js";
export * from "./offset.js";
export * from "./subjects.js";
export * from "./reader.js";
export * from "./rawEvent.js";
export * from "./publisher.js";
export * from "./append.js";
export * from "./atomicAppend.js";
export * from "./fileAppend.js";
export * from "./pending.js";
export * from "./server.js";
export * from "./serverVersion.js";
export * from "./cluster.js";
export * from "./batches.js";
export * from "./schemas.js";
export * from "./packed.js";
