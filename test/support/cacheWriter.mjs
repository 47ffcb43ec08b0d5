// Updates one processor's record in a local catalog copy, many times, from a process of its own.
// Usage: node cacheWriter.mjs <catalog.json> <processor> <updates> <start at, epoch ms>
import { register } from "tsx/esm/api";
register();
const { updateCatalogCache } = await import("../../src/views/catalogCache.ts");
const [path, name, count, startAt] = process.argv.slice(2);
while (Date.now() < Number(startAt)) {
  // spin, so every writer starts within the same millisecond
}
for (let i = 1; i <= Number(count); i++) {
  updateCatalogCache(path, { name, live: i, previousLive: [], nextVersion: i + 1, versions: {}, history: [] }, i);
}
