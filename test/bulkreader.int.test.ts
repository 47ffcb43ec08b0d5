import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { writeProcessor } from "./support/processors.js";
import { deployModule } from "../src/processors/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";
import { waitForVersion } from "../src/cli/wait.js";

const V2 = resolve("examples/orders/orders_by_user_v2.ts");

describe("the bulk reader thread: rebuilds read off the worker's main connection", () => {
  it("reads a rebuild on its own thread and connection: the worker's main connection carries none of its events, the view equals the reference, and once caught up the version follows the log on the main connection", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(30_000, 161);
    const before = env.nc.stats().inMsgs;
    // Small batches and pulls: many pauses, resumes and window changes cross the thread boundary.
    await env.startWorker(env.dataDir, undefined, { bulkReader: { url: env.server.url, name: "kappa-test-bulk" }, limits: { maxEvents: 300 } });
    await deployModule(env.nc, env.spec, V2);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(file) === 30_000, 60_000, "rebuild done");
    // The worker shares env.nc (catalog, stats, leases: a few hundred messages), not the 30,000 events.
    expect(env.nc.stats().inMsgs - before).toBeLessThan(3000);
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(events, true)));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const more = await env.appendOrders(500, 162);
    await waitFor(() => readCheckpoint(file) === 30_500, 30_000, "live events applied");
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals([...events, ...more], true)));
  }, 120_000);

  it("names the event and its type when a handler gets stuck on an event the reader thread read, and the next version reads from the start again", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(3000, 163);
    await env.startWorker(env.dataDir, undefined, { bulkReader: { url: env.server.url }, handlerTimeoutMs: 1000, limits: { maxEvents: 200 } });
    const stuck = writeProcessor(`
export default {
  name: "orders_by_user",
  subjects: ["order.*"],
  schema: ["CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)"],
  apply(e, ctx) { if (e.seq === 2500) for (;;) {} },
};`);
    const bad = await deployModule(env.nc, env.spec, stuck);
    const cat = await env.catalog();
    const err = (await waitForVersion(cat, "orders_by_user", bad.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`v1 failed at event 2500 \\(${events[2499]!.type.replace(".", "\\.")}\\): orders_by_user handler did not return within 1000 ms`));
    const good = await deployModule(env.nc, env.spec, V2);
    await waitForVersion(cat, "orders_by_user", good.version.version, { quiet: true });
    expect(digestFile(env.dataDir.viewFile("orders_by_user", good.version.version)).digest).toBe(referenceDigest(referenceTotals(events, true)));
  }, 120_000);
});
