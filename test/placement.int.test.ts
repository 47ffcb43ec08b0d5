import { describe, it, expect } from "vitest";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { referenceDigest, referenceMovementsDigest, referenceTotals } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { DataDir, digestFile, readCheckpoint } from "../src/views/index.js";
import { gatherStatus } from "../src/cli/status.js";
import { renderStatus } from "../src/cli/commands/status.js";

describe("placement and heartbeats (3-server cluster, two workers)", () => {
  it("a worker placed on one processor never opens another's view; status shows every worker, the writers, and a worker gone silent", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = await env.appendOrders(5000, 401);
    const d1 = new DataDir(join(env.dir, "w1"));
    const d2 = new DataDir(join(env.dir, "w2"));
    const w1 = WorkerProcess.start(env.nats.url, d1.root, ["--worker-id", "w1", "--processors", "orders_by_user"], ["--replicas", "3"]);
    const w2 = WorkerProcess.start(env.nats.url, d2.root, ["--worker-id", "w2"], ["--replicas", "3"]);
    try {
      await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
      await deployModule(env.nc, env.spec, resolve("examples/pipeline/order_facts.ts"));
      await env.waitForRecord("orders_by_user", (r) => r.live === 1);
      await env.waitForRecord("order_facts", (r) => r.live === 1);
      const f = (d: DataDir) => d.viewFile("orders_by_user", 1);
      await waitFor(() => readCheckpoint(f(d1)) === events.length && readCheckpoint(f(d2)) === events.length, 30_000, "both replicas at the head");
      // Each replica equals a reference computed from the events, not merely the other replica.
      const reference = referenceDigest(referenceTotals(events, true));
      expect(digestFile(f(d1)).digest).toBe(reference);
      expect(digestFile(f(d2)).digest).toBe(reference);
      expect(existsSync(d1.viewsOf("order_facts"))).toBe(false); // never opened, not even created
      await waitFor(() => readCheckpoint(d2.viewFile("order_facts", 1)) === events.length, 30_000, "w2's order_facts at the head");
      expect(digestFile(d2.viewFile("order_facts", 1)).digest).toBe(referenceMovementsDigest(events));

      const ctx = cliContext(env, { nats: env.nats.url });
      const st = await waitFor(async () => {
        const s = await gatherStatus(ctx);
        const obu = s.processors.find((p) => p.name === "orders_by_user")!.versions[0]!;
        return s.workers.length === 2 && obu.replicas?.length === 2 && obu.writer ? s : undefined;
      }, 10_000, "both workers reporting");
      const obu = st.processors.find((p) => p.name === "orders_by_user")!.versions[0]!;
      const facts = st.processors.find((p) => p.name === "order_facts")!.versions[0]!;
      expect(obu.replicas).toEqual(["w1", "w2"]);
      expect(["w1", "w2"]).toContain(obu.writer);
      expect(facts).toMatchObject({ replicas: ["w2"], writer: "w2" });
      expect(st.workers.map((w) => [w.worker, w.silent, w.processors])).toEqual([["w1", false, ["orders_by_user"]], ["w2", false, null]]);
      expect(renderStatus(st)).toMatch(/orders_by_user v1 \(writer\)/);

      await w1.kill("SIGKILL");
      const after = await waitFor(async () => {
        const s = await gatherStatus(ctx);
        return s.workers.find((w) => w.worker === "w1")?.silent ? s : undefined;
      }, 15_000, "w1 shown silent");
      expect(renderStatus(after)).toMatch(/w1\s*│\s*SILENT/);
      // The version w1 may have written is written by w2 now.
      await waitFor(async () => (await gatherStatus(ctx)).processors.find((p) => p.name === "orders_by_user")!.versions[0]!.writer === "w2", 10_000, "w2 writes orders_by_user");
      await ctx.close();
    } catch (err) {
      console.error(`--- w1\n${w1.output.slice(-2000)}\n--- w2\n${w2.output.slice(-2000)}`);
      throw err;
    } finally {
      await w1.kill();
      await w2.kill();
    }
  }, 120_000);
});
