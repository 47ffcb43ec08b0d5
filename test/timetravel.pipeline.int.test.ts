import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { writeProcessor } from "./support/processors.js";
import { cliContext } from "./support/cli.js";
import { deployModule, replayProcessor, outputOf } from "../src/processors/index.js";
import { digestFile, promote, readCheckpoint } from "../src/views/index.js";
import { frozenVersionAsOf } from "../src/cli/asOf.js";

const FACTS = resolve("examples/pipeline/order_facts.ts");
const SPEND = resolve("examples/pipeline/user_spend.ts");
/** order_facts v2: the same events out, with every amount doubled (another output, as many events). */
const FACTS_V2 = writeProcessor(`
export default {
  name: "order_facts",
  subjects: ["order.*"],
  schema: ["CREATE TABLE movements (seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, delta REAL NOT NULL)"],
  on: {
    "order.placed": (e, ctx) => ctx.emit("money.moved", { user: e.data.user, delta: 2 * e.data.amount, order: e.data.order }),
    "order.refunded": (e, ctx) => ctx.emit("money.moved", { user: e.data.user, delta: -2 * e.data.amount, order: e.data.order }),
  },
};
`);

describe("--as-of on a pipeline stage after its upstream was promoted", () => {
  it("reads the upstream version the stage reads, and never answers with a frozen version built on another one", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(400, 61);
    await env.startWorker();
    const cat = await env.catalog();
    const lastOf = async (v: number) => Number((await env.jsm.streams.info(outputOf(env.spec.stream, "order_facts", v).stream)).state.last_seq);
    const spendFile = (v: number) => env.dataDir.viewFile("user_spend", v);

    await deployModule(env.nc, env.spec, FACTS);
    await env.waitForRecord("order_facts", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, SPEND);
    await env.waitForRecord("user_spend", (r) => r.live === 1);
    const end1 = await lastOf(1);
    await waitFor(() => readCheckpoint(spendFile(1)) === end1, 20_000, "user_spend v1 at the end of order_facts v1's output");

    // order_facts v2 goes live; user_spend v1 still reads v1's output (pinned at deploy).
    await deployModule(env.nc, env.spec, FACTS_V2);
    await env.waitForRecord("order_facts", (r) => r.versions["2"]?.state === "caught-up");
    await waitFor(async () => (await lastOf(2)) >= end1, 20_000, "order_facts v2's output");
    await promote(cat, "order_facts", 2);

    const ctx = cliContext(env);
    try {
      // As of the end of v1's output: the same rows as user_spend v1, which read exactly that.
      const a = await frozenVersionAsOf(ctx, "user_spend", String(end1), { build: true, quiet: true });
      const recA = await cat.require("user_spend");
      expect(recA.versions[String(a.version)]!.source).toEqual({ processor: "order_facts", version: 1 });
      await waitFor(() => readCheckpoint(spendFile(a.version)) === end1, 20_000, "the frozen version at its end");
      expect(digestFile(spendFile(a.version)).digest).toBe(digestFile(spendFile(1)).digest);

      // The stage is replayed onto v2's output and promoted: as of a sequence there is a new frozen version.
      const r = await replayProcessor(env.nc, env.spec, "user_spend", { from: "start", promote: true });
      const end2 = await lastOf(2);
      await env.waitForRecord("user_spend", (x) => x.live === r.version.version);
      await waitFor(() => readCheckpoint(spendFile(r.version.version)) === end2, 20_000, "user_spend on v2 at its end");
      const b = await frozenVersionAsOf(ctx, "user_spend", String(end2), { build: true, quiet: true });
      expect(b.version).not.toBe(a.version);
      expect((await cat.require("user_spend")).versions[String(b.version)]!.source).toEqual({ processor: "order_facts", version: 2 });
      await waitFor(() => readCheckpoint(spendFile(b.version)) === end2, 20_000, "the second frozen version at its end");
      expect(digestFile(spendFile(b.version)).digest).toBe(digestFile(spendFile(r.version.version)).digest);
      // The two moments really differ (doubled amounts), so the checks above can tell them apart.
      expect(digestFile(spendFile(b.version)).digest).not.toBe(digestFile(spendFile(a.version)).digest);
      // Asked again, each is reused.
      expect((await frozenVersionAsOf(ctx, "user_spend", String(end2), { build: false, quiet: true })).version).toBe(b.version);
    } finally {
      await ctx.close();
    }
  }, 90_000);
});
