import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext, kappa } from "./support/cli.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { promote, rollback, CatalogConflictError, type ProcessorRecord } from "../src/views/index.js";
import { runPromote, runRollback } from "../src/cli/commands/lifecycle.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");
const NAME = "orders_by_user";

/** The invariants every swap must keep: one live version, in state live; rollback targets are not live; history ends with the swap that made it live. */
function expectConsistent(rec: ProcessorRecord): void {
  const live = Object.values(rec.versions).filter((v) => v.state === "live");
  expect(live.map((v) => v.version)).toEqual([rec.live]);
  expect(rec.previousLive).not.toContain(rec.live);
  expect(new Set(rec.previousLive).size).toBe(rec.previousLive.length);
  const lastSwap = rec.history.filter((h) => h.action === "promote" || h.action === "rollback").at(-1)!;
  expect(lastSwap.version).toBe(rec.live);
}

/** v1 live, then v2 and v3 promoted in turn (all three caught up and following the log), v4 caught up and not live. */
async function fourVersions(env: TestEnv): Promise<void> {
  await env.appendOrders(300, 71);
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord(NAME, (r) => r.live === 1);
  await deployModule(env.nc, env.spec, V2);
  await replayProcessor(env.nc, env.spec, NAME, { from: "start", codeOf: 1 });
  await replayProcessor(env.nc, env.spec, NAME, { from: "start", codeOf: 2 });
  await env.waitForRecord(NAME, (r) => [2, 3, 4].every((v) => r.versions[String(v)]!.state === "caught-up"));
  const cat = await env.catalog();
  await promote(cat, NAME, 2, { expectedLive: 1 });
  await promote(cat, NAME, 3, { expectedLive: 2 });
}

describe("swaps are compare-and-set, all of them", () => {
  it("checks the lag against the stream head at the moment of promoting, not against a stale report", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(200, 72);
    const w = await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord(NAME, (r) => r.live === 1 && r.versions["2"]!.state === "caught-up");
    const cat = await env.catalog();
    // The worker's last report said "caught up, lag 0"; then it stopped, and the log moved on.
    await waitFor(async () => {
      const s = await cat.stats(NAME, 2);
      return s !== null && s.caughtUp && s.pending === 0 && s.checkpoint === 200;
    }, 10_000, "v2 reported caught up at 200");
    await w.close();
    await env.appendOrders(40, 73);
    const ctx = cliContext(env);
    try {
      await expect(runPromote(ctx, NAME, 2, {})).rejects.toThrow(/has not caught up \(caught-up, lag 40\)/);
      await expect(runPromote(ctx, NAME, 2, { maxLag: 39 })).rejects.toThrow(/lag 40/);
      expect((await runPromote(ctx, NAME, 2, { maxLag: 40 })).live).toBe(2);
    } finally {
      await ctx.close();
    }
  });

  it("rejects a --max-lag that is not a number instead of promoting", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(50, 74);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord(NAME, (r) => r.live === 1);
    const w = env.workers[0]!;
    await w.close(); // v2 stays building: with a NaN lag limit the old check waved it through
    await deployModule(env.nc, env.spec, V2);
    const r = kappa(["--nats", env.server.url, "--data-dir", env.dataDir.root, "promote", NAME, "2", "--max-lag", "foo"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--max-lag foo is not a number of events/);
    expect((await (await env.catalog()).require(NAME)).live).toBe(1);
  });

  it("lets exactly one of two racing rollbacks act: one step back, one history entry", async () => {
    await using env = await TestEnv.start();
    await fourVersions(env);
    const cat = await env.catalog();
    const results = await Promise.allSettled([rollback(cat, NAME, { expectedLive: 3 }), rollback(await env.catalog(), NAME, { expectedLive: 3 })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(CatalogConflictError);
    const rec = await cat.require(NAME);
    expect(rec.live).toBe(2);
    expect(rec.previousLive).toEqual([1]);
    expect(rec.history.filter((h) => h.action === "rollback")).toHaveLength(1);
    expectConsistent(rec);
    // The CLI reads the live pointer and passes it on: a plain rollback still works.
    const ctx = cliContext(env);
    try {
      expect((await runRollback(ctx, NAME)).live).toBe(1);
    } finally {
      await ctx.close();
    }
  });

  it("lets exactly one of a racing rollback and promote act, and leaves catalog and history consistent", async () => {
    await using env = await TestEnv.start();
    await fourVersions(env);
    const cat = await env.catalog();
    const [rb, pr] = await Promise.allSettled([rollback(cat, NAME, { expectedLive: 3 }), promote(await env.catalog(), NAME, 4, { expectedLive: 3 })]);
    expect([rb.status, pr.status].filter((s) => s === "fulfilled")).toHaveLength(1);
    const rec = await cat.require(NAME);
    if (rb.status === "fulfilled") {
      expect(rec.live).toBe(2);
      expect(rec.previousLive).toEqual([1]);
    } else {
      expect(rb.reason).toBeInstanceOf(CatalogConflictError);
      expect(rec.live).toBe(4);
      expect(rec.previousLive).toEqual([1, 2, 3]);
    }
    expect(rec.history.filter((h) => h.action === "promote" || h.action === "rollback")).toHaveLength(4); // v1, v2, v3, and the one winner
    expectConsistent(rec);
  });

  it("never lets an automatic --promote override a promotion made after it was asked for", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(200, 75);
    const w = await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord(NAME, (r) => r.live === 1);
    await w.close();
    await deployModule(env.nc, env.spec, V2, { promote: true }); // v2: promote when caught up
    await replayProcessor(env.nc, env.spec, NAME, { from: "start", codeOf: 1 }); // v3
    const cat = await env.catalog();
    await promote(cat, NAME, 3, { expectedLive: 1 }); // someone promotes v3 by hand meanwhile
    await env.startWorker();
    const rec = await env.waitForRecord(NAME, (r) => r.versions["2"]!.state === "caught-up");
    expect(rec.live).toBe(3);
    expect(rec.versions["2"]!.promoteWhenCaughtUp).toBeUndefined();
    expect(rec.history.at(-1)).toMatchObject({ action: "caught-up", version: 2, detail: expect.stringMatching(/not promoted/) });
    expectConsistent(rec);
  });

  it("still promotes with --promote when nobody swapped in between, also behind a first version going live by itself", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(200, 76);
    await deployModule(env.nc, env.spec, V1); // no worker yet: v1 and v2 both building
    await deployModule(env.nc, env.spec, V2, { promote: true });
    await env.startWorker();
    const rec = await env.waitForRecord(NAME, (r) => r.versions["1"]!.state !== "building" && r.versions["2"]!.state !== "building" && r.live === 2);
    expectConsistent(rec);
  });
});
