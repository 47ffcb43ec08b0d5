/** Views: SQLite view files, their migrations, checkpoint and digest; the catalog of versions and the live pointer; read-only queries. */
export * from "./paths.js";
export * from "./files.js";
export * from "./migrations.js";
export * from "./viewFile.js";
export * from "./walKeeper.js";
export * from "./digest.js";
export * from "./catalog.js";
export * from "./catalogCache.js";
export * from "./lifecycle.js";
export * from "./readOnly.js";
export * from "./queryPool.js";
export * from "./queryErrors.js";
export * from "./seqWait.js";
export * from "./query.js";
export * from "./leases.js";
export * from "./fileLock.js";
export * from "./compare.js";
