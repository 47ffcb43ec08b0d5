import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { throwingOrders, writeProcessor } from "./support/processors.js";
import { cliContext } from "./support/cli.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { digestFile, readCheckpoint, QueryPool, queryView } from "../src/views/index.js";
import { waitForVersion } from "../src/cli/wait.js";
import { recordSource } from "../src/cli/records.js";
import { readDeadLetters } from "../src/cli/commands/dlq.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");

describe("poison events and bad code", () => {
  it("halts a version on a throwing processor, says where and why, and the live version keeps serving", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(2000, 51);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const bad = await deployModule(env.nc, env.spec, throwingOrders(190, "halt"));
    const cat = await env.catalog();
    const err = await waitForVersion(cat, "orders_by_user", bad.version.version, { quiet: true }).catch((e: Error) => e);
    const firstBig = events.findIndex((e) => e.type === "order.placed" && (e.data as { amount: number }).amount > 190);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`orders_by_user v2 failed at event ${firstBig + 1} (order.placed): orders_by_user threw: amount too large: ${(events[firstBig]!.data as { amount: number }).amount}`);
    const rec = (await cat.get("orders_by_user"))!.record;
    expect(rec.versions["2"]!.state).toBe("failed");
    expect(rec.versions["2"]!.error).toMatchObject({ seq: firstBig + 1, type: "order.placed" });
    expect(rec.live).toBe(1);
    // Everything before the poison event was applied and committed.
    expect(readCheckpoint(env.dataDir.viewFile("orders_by_user", 2))).toBe(firstBig);
    // The live version follows new events as before.
    const more = await env.appendOrders(100, 52);
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) === 2100, 10_000, "v1 current");
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 1)).digest).toBe(referenceDigest(referenceTotals([...events, ...more])));
  });

  it("skips poison events into the dead-letter table, and a fixed version processes them on its replay", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(2000, 61);
    await env.startWorker();
    await deployModule(env.nc, env.spec, throwingOrders(150, "skip"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(file) === 2000, 10_000, "v1 at head");
    const bigSeqs = events.flatMap((e, i) => (e.type === "order.placed" && (e.data as { amount: number }).amount > 150 ? [i + 1] : []));
    const dl = readDeadLetters(file, 10_000);
    expect(dl.map((d) => d.seq)).toEqual(bigSeqs);
    expect(dl[0]!.error).toMatch(/amount too large/);
    expect(JSON.parse(dl[0]!.data)).toEqual(events[bigSeqs[0]! - 1]!.data);
    const kept = events.filter((_e, i) => !bigSeqs.includes(i + 1));
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(kept, true)));
    // A replay of the same code records the same dead letters: the second digest covers them.
    await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", codeOf: 1 });
    const again = env.dataDir.viewFile("orders_by_user", 2);
    await waitFor(() => readCheckpoint(again) === 2000, 10_000, "the replay at head");
    expect(digestFile(file).platform.tables.map((t) => [t.table, t.rows])).toEqual([["kappa_dead_letters", bigSeqs.length]]);
    expect(digestFile(again)).toEqual(digestFile(file));
    // The fix: a new version of correct code replays everything, poison events included.
    await deployModule(env.nc, env.spec, V2, { promote: true });
    await env.waitForRecord("orders_by_user", (r) => r.live === 3);
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 3)) === 2000, 10_000, "v3 at head");
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 3)).digest).toBe(referenceDigest(referenceTotals(events, true)));
    expect(readDeadLetters(env.dataDir.viewFile("orders_by_user", 3), 10)).toEqual([]);
  });

  it("handles a message that is not JSON (published by another client) under the same policy", async () => {
    await using env = await TestEnv.start();
    const before = await env.appendOrders(100, 71);
    env.nc.publish("events.order.placed", new TextEncoder().encode("{not json"));
    await env.nc.flush();
    const after = await env.appendOrders(100, 72);
    await env.startWorker();
    const halt = await deployModule(env.nc, env.spec, V1);
    const cat = await env.catalog();
    const err = (await waitForVersion(cat, "orders_by_user", halt.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/failed at event 101 \(order\.placed\): not valid JSON — another client may have published it/);
    const skip = await deployModule(env.nc, env.spec, throwingOrders(1e9, "skip"));
    await env.waitForRecord("orders_by_user", (r) => r.versions[String(skip.version.version)]!.state === "live");
    const file = env.dataDir.viewFile("orders_by_user", skip.version.version);
    await waitFor(() => readCheckpoint(file) === 201, 10_000, "skip version at head");
    expect(readDeadLetters(file, 10).map((d) => [d.seq, d.data])).toEqual([[101, "{not json"]]);
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals([...before, ...after], true)));
  });

  it("fails a new version whose migration breaks, with the SQL error, and leaves the live version untouched", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(300, 81);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const broken = writeProcessor(`export default { name: "orders_by_user", schema: ["CREATE TABLE totals (user_id TEXT PRIMARY KEY", "SELECT 1"], apply() {} };`);
    const dep = await deployModule(env.nc, env.spec, broken);
    const cat = await env.catalog();
    const err = (await waitForVersion(cat, "orders_by_user", dep.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/v2 failed: schema migration schema\[0\] failed: incomplete input/);
    const rec = (await cat.get("orders_by_user"))!.record;
    expect(rec.live).toBe(1);
    const ctx = cliContext(env);
    const pool = new QueryPool(1);
    try {
      const a = await queryView(env.dataDir, recordSource(ctx), pool, { processor: "orders_by_user", sql: "SELECT count(*) AS n FROM totals" });
      expect(a.version).toBe(1);
      expect(Number(a.rows[0]!.n)).toBeGreaterThan(0);
    } finally {
      await pool.close();
      await ctx.close();
    }
  });

  it("verify passes on an untouched view, detects a tampered row, and diff names the keys that differ", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(2000, 91);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start" });
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]!.state === "caught-up" && r.versions["3"]!.state === "caught-up");
    const { verifyVersion, diffVersions } = await import("../src/processors/index.js");
    const ok = await verifyVersion(env.nc, env.spec, env.dataDir, "orders_by_user");
    expect(ok.ok).toBe(true);
    expect(ok.seq).toBe(2000);
    const same = await diffVersions(env.dataDir, "orders_by_user", 1, 2);
    expect(same.tables).toEqual([expect.objectContaining({ table: "totals", equal: true, differing: 0 })]);
    const differ = await diffVersions(env.dataDir, "orders_by_user", 1, 3);
    expect(differ.tables[0]!.equal).toBe(false);
    expect(differ.tables[0]!.differing).toBeGreaterThan(0);

    const db = new Database(env.dataDir.viewFile("orders_by_user", 1));
    const victim = db.prepare("SELECT user_id FROM totals ORDER BY user_id LIMIT 1 OFFSET 7").pluck().get() as string;
    db.prepare("UPDATE totals SET amount = amount + 1 WHERE user_id = ?").run(victim);
    db.close();
    const bad = await verifyVersion(env.nc, env.spec, env.dataDir, "orders_by_user", 1);
    expect(bad.ok).toBe(false);
    expect(bad.tables[0]).toMatchObject({ table: "totals", equal: false, differing: 1, differingKeys: [JSON.stringify([victim])] });
  });
});
