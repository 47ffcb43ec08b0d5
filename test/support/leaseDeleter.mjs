// Does what the worker does to a retired version's files, slowly: holds the exclusive lock on its lease
// file for <hold ms>, then removes the files and the lease file, and lets go. A deleter in a process of its own.
// Usage: node leaseDeleter.mjs <views dir> <version> <hold ms> <file>...
import { register } from "tsx/esm/api";
import { rmSync } from "node:fs";
import { join } from "node:path";
register();
const { tryExclusiveLock } = await import("../../src/views/fileLock.ts");
const [dir, version, holdMs, ...files] = process.argv.slice(2);
const lease = join(dir, ".readers", `v${version}.lock`);
const lock = tryExclusiveLock(lease);
if (!lock) process.exit(3);
process.stdout.write("held\n");
setTimeout(() => {
  for (const f of files) rmSync(f, { force: true });
  rmSync(lease, { force: true });
  lock.release();
  process.stdout.write("deleted\n");
  process.exit(0);
}, Number(holdMs));
