// One contender for the data dir's worker lock, in a process of its own: waits for a common instant,
// tries the lock, prints "got" or "refused <message>", and holds a won lock for a while.
// Usage: node [--expose-gc] lockContender.mjs <lock path> <start at, epoch ms> <hold ms>
// It keeps no reference to the lock it won, and under --expose-gc collects garbage at once: a lock that a
// collection can free is lost right there, not at whatever moment V8 happens to pick.
import { register } from "tsx/esm/api";
register();
const { acquireWorkerLock } = await import("../../src/processors/workerLock.ts");
const [path, startAt, holdMs] = process.argv.slice(2);
while (Date.now() < Number(startAt)) {
  // spin for the last stretch so every contender tries within the same millisecond
}
try {
  acquireWorkerLock(path);
  globalThis.gc?.();
  process.stdout.write("got\n");
  setTimeout(() => process.exit(0), Number(holdMs));
} catch (err) {
  process.stdout.write(`refused ${err.message}\n`);
  process.exit(0);
}
