import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

describe("backbone: append → deploy → caught up → query", () => {
  it("builds a view equal to a reference computed from the same events", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(5000);
    await env.startWorker();
    const dep = await deployModule(env.nc, env.spec, V1);
    expect(dep.version.version).toBe(1);
    const rec = await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    expect(rec.versions["1"]!.state).toBe("live");
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => (readCheckpoint(file) ?? 0) >= 5000, 30_000, "checkpoint 5000");
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(events)));
  });

  it("resumes after a worker restart and ends with the digest of an uninterrupted build", async () => {
    await using env = await TestEnv.start();
    const first = await env.appendOrders(3000, 7);
    const w1 = await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => (readCheckpoint(file) ?? 0) >= 1, 30_000, "some progress");
    await w1.close();
    const mid = readCheckpoint(file)!;
    const second = await env.appendOrders(3000, 8);
    await env.startWorker();
    await waitFor(() => readCheckpoint(file) === 6000, 30_000, "checkpoint 6000");
    expect(mid).toBeGreaterThan(0);
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals([...first, ...second])));
  });

  it("catches up while events keep arriving, then keeps following the log", async () => {
    await using env = await TestEnv.start();
    const all = await env.appendOrders(2000, 3);
    await env.startWorker();
    let stop = false;
    const writer = (async () => {
      let seed = 100;
      while (!stop) {
        all.push(...(await env.appendOrders(200, seed++)));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    stop = true;
    await writer;
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(file) === all.length, 30_000, "all events applied");
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(all)));
  });
});
