import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { deployModule } from "../src/processors/index.js";
import { readCheckpoint, remoteQuery } from "../src/views/index.js";

describe("remote queries and --max-staleness", () => {
  it("a replica further behind than --max-staleness does not answer; a looser bound, or the caught-up replica, does", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(60_000, 701);
    // Tiny batches keep the build going long enough to ask it while it is far behind.
    await using w = WorkerProcess.start(env.server.url, env.dataDir.root, ["--worker-id", "w1", "--batch-events", "10"]);
    await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => (readCheckpoint(file) ?? 0) > 500, 30_000, "building");
    const q = (maxStaleness: number, timeoutMs = 1000) => remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: "SELECT count(*) AS n FROM totals", version: 1, maxStaleness, timeoutMs });
    await expect(q(10)).rejects.toThrow(/events behind on orders_by_user v1 \(more than --max-staleness 10\)/);
    const loose = await q(1_000_000);
    expect(loose.worker).toBe("w1");
    expect(loose.seq).toBeLessThan(60_000);
    await waitFor(() => readCheckpoint(file) === 60_000, 120_000, "caught up");
    expect((await q(0, 5000)).seq).toBe(60_000);
  }, 180_000);
});
