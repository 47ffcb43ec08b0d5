import { describe, it, expect } from "vitest";
import { TestEnv, waitFor } from "./support/env.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { writeProcessor } from "./support/processors.js";
import { deployModule } from "../src/processors/index.js";
import { readCheckpoint, remoteQuery } from "../src/views/index.js";

/** A processor that spends a fixed amount of CPU per event (no clock): its build stays behind for seconds. */
const SLOW = writeProcessor(`
export default {
  name: "slow_counts",
  schema: ["CREATE TABLE n (k INTEGER PRIMARY KEY, c INTEGER NOT NULL)"],
  apply(e, ctx) {
    let x = 0;
    for (let i = 0; i < 1000000; i++) x = (x + i) % 1000003;
    ctx.db.prepare("INSERT INTO n VALUES (1, 1) ON CONFLICT (k) DO UPDATE SET c = c + 1").run();
  },
};
`);

describe("remote queries and --max-staleness", () => {
  it("a replica further behind than --max-staleness does not answer; a looser bound, or the caught-up replica, does", async () => {
    await using env = await TestEnv.start();
    // Enough events that the build stays behind for many seconds, also on a fast idle machine.
    await env.appendOrders(2000, 701);
    await using w = WorkerProcess.start(env.server.url, env.dataDir.root, ["--worker-id", "w1"]);
    await deployModule(env.nc, env.spec, SLOW);
    const file = env.dataDir.viewFile("slow_counts", 1);
    await waitFor(() => (readCheckpoint(file) ?? 0) > 0, 30_000, "building");
    const q = (maxStaleness: number, timeoutMs: number) => remoteQuery(env.nc, env.spec.stream, "slow_counts", { sql: "SELECT c FROM n", version: 1, maxStaleness, timeoutMs });
    await expect(q(10, 2000)).rejects.toThrow(/events behind on slow_counts v1 \(more than --max-staleness 10\)/);
    const loose = await q(1_000_000, 10_000);
    expect(loose.worker).toBe("w1");
    expect(loose.seq).toBeLessThan(2000);
    await waitFor(() => readCheckpoint(file) === 2000, 150_000, "caught up");
    expect(await q(0, 10_000)).toMatchObject({ seq: 2000, rows: [{ c: 2000 }] });
    expect(w.exited).toBe(false);
  }, 240_000);
});
