import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { QueryPool, queryView, digestFile, readCheckpoint, promote, rollback, Catalog, CatalogConflictError } from "../src/views/index.js";
import { runPromote } from "../src/cli/commands/lifecycle.js";
import { recordSource } from "../src/cli/records.js";
import type { OrderEvent } from "../examples/orders/generate.js";
import { throwingOrders } from "./support/processors.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");

/** sum(orders) after the first `seq` events under v1 (placed) and v2 (placed − refunded) semantics. */
function expectedSums(events: OrderEvent[]): { v1: number[]; v2: number[] } {
  const v1 = [0];
  const v2 = [0];
  const users = new Set<string>();
  for (const e of events) {
    const u = (e.data as { user: string }).user;
    let d1 = 0;
    let d2 = 0;
    if (e.type === "order.placed") {
      d1 = d2 = 1;
      users.add(u);
    } else if (e.type === "order.refunded" && users.has(u)) d2 = -1;
    v1.push(v1.at(-1)! + d1);
    v2.push(v2.at(-1)! + d2);
  }
  return { v1, v2 };
}

describe("versioned reprocessing", () => {
  it("deploys v2 with --promote under load, swaps it in, and rolls back to a current v1 — queries never see a gap", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(4000, 11);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);

    const ctx = cliContext(env);
    const records = recordSource(ctx);
    const pool = new QueryPool(2);
    let stopWriter = false;
    let stopReader = false;
    const writer = (async () => {
      let seed = 500;
      while (!stopWriter) {
        events.push(...(await env.appendOrders(100, seed++)));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const answers: { version: number; seq: number; sum: number }[] = [];
    const errors: unknown[] = [];
    const reader = (async () => {
      while (!stopReader) {
        try {
          const a = await queryView(env.dataDir, records, pool, { processor: "orders_by_user", sql: "SELECT coalesce(sum(orders), 0) AS s FROM totals" });
          answers.push({ version: a.version, seq: a.seq, sum: Number(a.rows[0]!.s) });
        } catch (err) {
          errors.push(err);
        }
      }
    })();

    const dep = await deployModule(env.nc, env.spec, V2, { promote: true });
    expect(dep.version.version).toBe(2);
    await env.waitForRecord("orders_by_user", (r) => r.live === 2);
    // Keep reading across each swap until enough answers came from each side of it.
    const seen = (n: number) => answers.length >= n;
    await waitFor(() => seen(answers.findIndex((a) => a.version === 2) + 50) && answers.some((a) => a.version === 2), 30_000, "answers from v2");
    const cat = await env.catalog();
    await rollback(cat, "orders_by_user");
    const atRollback = answers.length;
    await waitFor(() => answers.slice(atRollback).filter((a) => a.version === 1).length >= 50, 30_000, "answers from v1 after the rollback");
    stopWriter = true;
    await writer;
    stopReader = true;
    await reader;
    await pool.close();
    await ctx.close();

    expect(errors).toEqual([]);
    expect(answers.length).toBeGreaterThan(100);
    const sums = expectedSums(events);
    const versions = new Set(answers.map((a) => a.version));
    expect(versions).toEqual(new Set([1, 2]));
    for (const a of answers) expect(a.sum).toBe(a.version === 1 ? sums.v1[a.seq] : sums.v2[a.seq]);

    // After the rollback v1 is live and current: it kept following the log.
    const f1 = env.dataDir.viewFile("orders_by_user", 1);
    const f2 = env.dataDir.viewFile("orders_by_user", 2);
    await waitFor(() => readCheckpoint(f1) === events.length && readCheckpoint(f2) === events.length, 30_000, "both versions current");
    expect(digestFile(f1).digest).toBe(referenceDigest(referenceTotals(events, false)));
    expect(digestFile(f2).digest).toBe(referenceDigest(referenceTotals(events, true)));
    const rec = (await cat.get("orders_by_user"))!.record;
    expect(rec.live).toBe(1);
    expect(rec.history.map((h) => h.action)).toEqual(["deploy", "caught-up", "promote", "deploy", "caught-up", "promote", "rollback"]);
  });

  it("replays from a sequence and from a time into views that reflect exactly the events at or after the offset", async () => {
    await using env = await TestEnv.start();
    const first = await env.appendOrders(1500, 21);
    await new Promise((r) => setTimeout(r, 50));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 50));
    const second = await env.appendOrders(1500, 22);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);

    const bySeq = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "1001" });
    const byTime = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: cut });
    expect([bySeq.version.version, byTime.version.version]).toEqual([2, 3]);
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]!.state === "caught-up" && r.versions["3"]!.state === "caught-up");
    const all = [...first, ...second];
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 3)) === 3000, 10_000, "v3 at head");
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 2)).digest).toBe(referenceDigest(referenceTotals(all.slice(1000), true)));
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 3)).digest).toBe(referenceDigest(referenceTotals(second, true)));
  });

  it("lets exactly one of two racing promotions win, and keeps the catalog consistent", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(500, 31);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, V2);
    await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", codeOf: 1 });
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]!.state === "caught-up" && r.versions["3"]!.state === "caught-up");
    const catA = await Catalog.open(env.nc, env.spec.stream);
    const catB = await Catalog.open(env.nc, env.spec.stream);
    const results = await Promise.allSettled([promote(catA, "orders_by_user", 2, { expectedLive: 1 }), promote(catB, "orders_by_user", 3, { expectedLive: 1 })]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(CatalogConflictError);
    const rec = (await catA.get("orders_by_user"))!.record;
    expect([2, 3]).toContain(rec.live);
    expect(Object.values(rec.versions).filter((v) => v.state === "live")).toHaveLength(1);
    expect(rec.versions[String(rec.live)]!.state).toBe("live");
    expect(rec.versions["1"]!.state).toBe("caught-up");
    expect(rec.history.filter((h) => h.action === "promote")).toHaveLength(2); // v1 on catch-up, then the winner
  });

  it("refuses to promote a version that has not caught up, and --force overrides", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(300, 41);
    const w = await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await w.close(); // no worker: v2 stays building
    await deployModule(env.nc, env.spec, V2);
    const ctx = cliContext(env);
    try {
      await expect(runPromote(ctx, "orders_by_user", 2, {})).rejects.toThrow(/has not caught up \(building/);
      const rec = await runPromote(ctx, "orders_by_user", 2, { force: true });
      expect(rec.live).toBe(2);
      await expect(runPromote(ctx, "orders_by_user", 2, { force: true })).rejects.toThrow(/already live/);
    } finally {
      await ctx.close();
    }
  });

  it("catches up at once when it starts at the end of a quiet log (from end, or a time after the last event)", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(50, 51);
    await env.startWorker();
    const first = await deployModule(env.nc, env.spec, V1, { from: "end" });
    expect(first.version.startSeq).toBe(51);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1, 10_000);
    const later = new Date(Date.now() + 1000).toISOString();
    const byTime = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: later });
    expect(byTime.version.startSeq).toBe(51);
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]!.state === "caught-up", 10_000);
    const more = await env.appendOrders(30, 52);
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) === 80, 10_000, "v1 follows new events");
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 1)).digest).toBe(referenceDigest(referenceTotals(more)));
  });

  it("never rolls back to, or promotes, a version that failed", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(200, 61);
    await env.startWorker();
    await deployModule(env.nc, env.spec, throwingOrders(1e9, "halt"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    // v1 is live, then fails on a poison event: it keeps serving, with its error.
    env.nc.publish("events.order.placed", new TextEncoder().encode("not json"));
    const rec = await env.waitForRecord("orders_by_user", (r) => r.versions["1"]!.error !== undefined);
    expect(rec.versions["1"]!.state).toBe("live");
    await deployModule(env.nc, env.spec, V1);
    const cat = await env.catalog();
    const after = await promote(cat, "orders_by_user", 2);
    expect(after.versions["1"]!.state).toBe("failed");
    await expect(rollback(cat, "orders_by_user")).rejects.toThrow(/has no version to roll back to: no version that was live before v2 is still running/);
    await expect(promote(cat, "orders_by_user", 1)).rejects.toThrow(/failed and cannot be made live/);
  });
});
