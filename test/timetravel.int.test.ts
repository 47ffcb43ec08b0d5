import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { digestFile, readCheckpoint, promote } from "../src/views/index.js";
import { diffVersions, SnapshotStore } from "../src/processors/index.js";
import { frozenVersionAsOf } from "../src/cli/asOf.js";
import { cliContext } from "./support/cli.js";

const V2 = resolve("examples/orders/orders_by_user_v2.ts");

describe("time travel: frozen versions", () => {
  it("--until a sequence and a time equal references built from exactly the events up to the offset, and stay frozen while events arrive", async () => {
    await using env = await TestEnv.start();
    const first = await env.appendOrders(1500, 31);
    await new Promise((r) => setTimeout(r, 50));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 50));
    const second = await env.appendOrders(1500, 32);
    const all = [...first, ...second];
    await env.startWorker();
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);

    const bySeq = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", until: "1000" });
    const byTime = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", until: cut });
    expect([bySeq.version.untilSeq, byTime.version.untilSeq]).toEqual([1000, 1500]);
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]!.state === "caught-up" && r.versions["3"]!.state === "caught-up");
    const f2 = env.dataDir.viewFile("orders_by_user", 2);
    const f3 = env.dataDir.viewFile("orders_by_user", 3);
    expect(readCheckpoint(f2)).toBe(1000);
    expect(readCheckpoint(f3)).toBe(1500);
    const d2 = digestFile(f2).digest;
    const d3 = digestFile(f3).digest;
    expect(d2).toBe(referenceDigest(referenceTotals(all.slice(0, 1000), true)));
    expect(d3).toBe(referenceDigest(referenceTotals(first, true)));

    // Events keep arriving: the live version follows them, the frozen ones do not move.
    const third = await env.appendOrders(800, 33);
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) === 3800, 20_000, "v1 at the new head");
    await new Promise((r) => setTimeout(r, 600)); // past the idle check, which must not move a frozen checkpoint either
    expect([readCheckpoint(f2), readCheckpoint(f3)]).toEqual([1000, 1500]);
    expect([digestFile(f2).digest, digestFile(f3).digest]).toEqual([d2, d3]);
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 1)).digest).toBe(referenceDigest(referenceTotals([...all, ...third], true)));

    // Never live by accident: promotion needs --force.
    const cat = await env.catalog();
    expect((await cat.get("orders_by_user"))!.record.live).toBe(1);
    await expect(promote(cat, "orders_by_user", 2)).rejects.toMatchObject({ code: "FROZEN_VERSION" });
    const rec = await promote(cat, "orders_by_user", 2, { force: true });
    expect(rec.live).toBe(2);
    await expect(replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", until: "99999" })).rejects.toMatchObject({ code: "UNTIL_IN_FUTURE" });
    await expect(replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", until: "10", promote: true })).rejects.toMatchObject({ code: "FROZEN_VERSION" });

    // Determinism: a rebuild of a frozen version from scratch gives the same bytes.
    const again = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", until: "1000" });
    await env.waitForRecord("orders_by_user", (r) => r.versions[String(again.version.version)]!.state === "caught-up");
    expect(digestFile(env.dataDir.viewFile("orders_by_user", again.version.version)).digest).toBe(d2);
  });

  it("--as-of builds a frozen version once (also when two queries race), then reuses it; --no-build refuses; diff compares it with the live one", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(1200, 41);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const ctx = cliContext(env);
    try {
      await expect(frozenVersionAsOf(ctx, "orders_by_user", "700", { build: false, quiet: true })).rejects.toMatchObject({ code: "NO_FROZEN_VERSION" });
      // Two queries asking at once build one version between them.
      const [first, racer] = await Promise.all([0, 1].map(() => frozenVersionAsOf(ctx, "orders_by_user", "700", { build: true, quiet: true })));
      expect([first, racer].map((a) => [a!.version, a!.seq])).toEqual([[2, 700], [2, 700]]);
      expect([first!.built, racer!.built].sort()).toEqual([false, true]);
      const later = await env.appendOrders(300, 42);
      const again = await frozenVersionAsOf(ctx, "orders_by_user", "700", { build: false, quiet: true });
      expect(again).toEqual({ version: 2, seq: 700, built: false });
      const rec = (await (await env.catalog()).get("orders_by_user"))!.record;
      expect(Object.keys(rec.versions)).toEqual(["1", "2"]);
      expect(digestFile(env.dataDir.viewFile("orders_by_user", 2)).digest).toBe(referenceDigest(referenceTotals(events.slice(0, 700), true)));

      await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) === 1500, 20_000, "v1 at head");
      const d = await diffVersions(env.dataDir, "orders_by_user", 2, 1, 1000, true);
      expect(d.a).toEqual({ version: 2, seq: 700 });
      expect(d.b).toEqual({ version: 1, seq: 1500 });
      // What changed since seq 700, row by row, against the references at both moments.
      const then = new Map(referenceTotals(events.slice(0, 700), true).map((r) => [r.user_id, JSON.stringify(r)]));
      const now = referenceTotals([...events, ...later], true);
      const added = now.filter((r) => !then.has(r.user_id)).length;
      const changed = now.filter((r) => then.has(r.user_id) && then.get(r.user_id) !== JSON.stringify(r)).length;
      expect(added + changed).toBeGreaterThan(0);
      expect(d.tables[0]).toMatchObject({ equal: false, onlyA: 0, onlyB: added, changed, differing: added + changed });
      await expect(diffVersions(env.dataDir, "orders_by_user", 2, 1, 100)).rejects.toMatchObject({ code: "NOT_ALIGNED" });
    } finally {
      await ctx.close();
    }
  });

  it("--as-of starts from the newest snapshot at or before the offset, and equals a build from the start", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(1000, 71);
    const worker = await env.startWorker();
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const f1 = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(f1) === 1000, 10_000, "v1 at 1000");
    const snap = await (await SnapshotStore.open(env.nc, env.spec.stream)).take(f1, "orders_by_user", 1);
    expect(snap.checkpoint).toBe(1000);
    events.push(...(await env.appendOrders(600, 72)));
    await waitFor(() => readCheckpoint(f1) === 1600, 10_000, "v1 at 1600");
    const ctx = cliContext(env);
    try {
      const seeded = await frozenVersionAsOf(ctx, "orders_by_user", "1400", { build: true, quiet: true });
      expect(seeded).toMatchObject({ version: 2, seq: 1400, built: true, seed: { version: 1, checkpoint: 1000 } });
      expect(worker.runners.get("orders_by_user/2")?.restoredFrom).toBe(1000);
      expect(digestFile(env.dataDir.viewFile("orders_by_user", 2)).digest).toBe(referenceDigest(referenceTotals(events.slice(0, 1400), true)));
      // Before the snapshot: nothing to start from but the start.
      const early = await frozenVersionAsOf(ctx, "orders_by_user", "900", { build: true, quiet: true });
      expect(early.seed).toBeUndefined();
      expect(worker.runners.get("orders_by_user/3")?.restoredFrom).toBeUndefined();
      expect(digestFile(env.dataDir.viewFile("orders_by_user", 3)).digest).toBe(referenceDigest(referenceTotals(events.slice(0, 900), true)));
    } finally {
      await ctx.close();
    }
  });
});
