import { describe, it, expect } from "vitest";
import { resolve, join, dirname } from "node:path";
import { existsSync, writeFileSync } from "node:fs";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { writeProcessor } from "./support/processors.js";
import { cliContext } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { digestFile, readCheckpoint, QueryPool, queryView } from "../src/views/index.js";
import { waitForVersion } from "../src/cli/wait.js";
import { recordSource } from "../src/cli/records.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

/** orders_by_user with v2 semantics whose handler runs `trap` (JavaScript) first on every event. */
function trappedOrders(trap: string): string {
  return writeProcessor(`
import { existsSync, rmSync, writeFileSync } from "node:fs";
export default {
  name: "orders_by_user",
  subjects: ["order.*"],
  schema: ["CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)"],
  apply(e, ctx) {
    ${trap}
    if (e.type === "order.placed") ctx.db.prepare("INSERT INTO totals (user_id, orders, amount) VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1, amount = round(amount + excluded.amount, 2)").run(e.data.user, e.data.amount);
    else if (e.type === "order.refunded") ctx.db.prepare("UPDATE totals SET orders = orders - 1, amount = round(amount - ?, 2) WHERE user_id = ?").run(e.data.amount, e.data.user);
  },
};
`);
}

describe("apply threads: versions cannot stall or crash each other", () => {
  it("fails a version whose handler never returns, with the event and the reason, while the live version keeps answering and following the log", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(2000, 141);
    // Long enough for v1 to follow 300 events while v2 is stuck; the test checks it was still stuck then.
    await env.startWorker(env.dataDir, undefined, { handlerTimeoutMs: 3000 });
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    // The trap says when it springs: from then on v2's handler is inside event 700 and never returns.
    const stuck = join(env.dir, "stuck-at-700");
    const bad = await deployModule(env.nc, env.spec, trappedOrders(`if (e.seq === 700) { writeFileSync(${JSON.stringify(stuck)}, ""); for (;;) {} }`));
    await waitFor(() => existsSync(stuck), 30_000, "v2 stuck in its handler at event 700");
    const cat = await env.catalog();
    // While v2 spins, the live version follows new events and answers queries.
    const more = await env.appendOrders(300, 142);
    const f1 = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(f1) === 2300, 10_000, "v1 follows the log while v2 is stuck");
    expect((await cat.get("orders_by_user"))!.record.versions["2"]!.state, "v2 was still stuck (not failed yet) when v1 had followed").toBe("building");
    const err = (await waitForVersion(cat, "orders_by_user", bad.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`v2 failed at event 700 \\(${events[699]!.type.replace(".", "\\.")}\\): orders_by_user handler did not return within 3000 ms \\(stuck for \\d+ ms\\); its thread was stopped`));
    const rec = (await cat.get("orders_by_user"))!.record;
    expect(rec.versions["2"]!.error).toMatchObject({ seq: 700, type: events[699]!.type });
    expect(rec.live).toBe(1);
    // Everything before the stuck event is committed; nothing after it.
    expect(readCheckpoint(env.dataDir.viewFile("orders_by_user", 2))).toBeLessThan(700);
    const evenMore = await env.appendOrders(200, 143);
    await waitFor(() => readCheckpoint(f1) === 2500, 10_000, "v1 keeps following after v2 failed");
    const ctx = cliContext(env);
    const pool = new QueryPool(1);
    try {
      const a = await queryView(env.dataDir, recordSource(ctx), pool, { processor: "orders_by_user", sql: "SELECT count(*) AS n FROM totals" });
      expect(a.version).toBe(1);
    } finally {
      await pool.close();
      await ctx.close();
    }
    expect(digestFile(f1).digest).toBe(referenceDigest(referenceTotals([...events, ...more, ...evenMore])));
  });

  it("restarts a thread that crashed once and ends with the clean digest; fails a version whose thread keeps crashing at one event, saying so", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(3000, 151);
    const log: string[] = [];
    await env.startWorker(env.dataDir, (l) => log.push(l));
    // Crashes once: the marker file is removed before the thread dies, so the restarted thread goes on.
    const once = trappedOrders(`if (e.seq === 1200 && existsSync(${JSON.stringify("MARK")})) { rmSync(${JSON.stringify("MARK")}); process.exit(4); }`);
    const mark = join(dirname(once), "crash-once");
    writeFileSync(mark, "");
    writeFileSync(once, (await import("node:fs")).readFileSync(once, "utf8").replaceAll('"MARK"', JSON.stringify(mark)));
    await deployModule(env.nc, env.spec, once);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const f1 = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(f1) === 3000, 20_000, "v1 at head after the crash");
    expect(existsSync(mark)).toBe(false); // the crash happened
    expect(log.some((l) => /apply thread exited with code 4 on event 1200 .*restarting it from checkpoint/.test(l))).toBe(true);
    expect(digestFile(f1).digest).toBe(referenceDigest(referenceTotals(events, true)));

    const always = await deployModule(env.nc, env.spec, trappedOrders("if (e.seq === 900) process.exit(5);"));
    const cat = await env.catalog();
    const err = (await waitForVersion(cat, "orders_by_user", always.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/v2 failed at event 900 \(order\.\w+\): orders_by_user v2: apply thread exited with code 5, 3 times at checkpoint 899 — fix the handler/);
    expect((await cat.get("orders_by_user"))!.record.live).toBe(1);
  });
});
