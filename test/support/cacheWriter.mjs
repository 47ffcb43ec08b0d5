// Adds many records to a local catalog copy, one update each, from a process of its own.
// Usage: node cacheWriter.mjs <catalog.json> <name prefix> <updates> <start at, epoch ms>
import { register } from "tsx/esm/api";
register();
const { updateCatalogCache } = await import("../../src/views/catalogCache.ts");
const [path, name, count, startAt] = process.argv.slice(2);
while (Date.now() < Number(startAt)) {
  // spin, so every writer starts within the same millisecond
}
// Every update a key of its own (<processor>-<i>): a lost update cannot hide behind a later one of the same record.
for (let i = 1; i <= Number(count); i++) {
  updateCatalogCache(path, { name: `${name}-${i}`, live: i, previousLive: [], nextVersion: i + 1, versions: {}, history: [] }, i);
}
