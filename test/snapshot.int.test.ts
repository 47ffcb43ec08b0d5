import { describe, it, expect } from "vitest";
import { join } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { kappaAsync } from "./support/cli.js";
import Database from "better-sqlite3";
import { referenceTotals, referenceDigestOf } from "./support/reference.js";
import { writeProcessor } from "./support/processors.js";
import { deployModule, SnapshotStore } from "../src/processors/index.js";
import { DataDir, digestFile, readCheckpoint } from "../src/views/index.js";
import { generateOrders } from "../examples/orders/generate.js";

const TOTALS = "CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)";
const APPLIED = "CREATE TABLE applied (seq INTEGER PRIMARY KEY, times INTEGER NOT NULL)";

// orders_by_user (v2 semantics) that also records, in a table of its own, each event it applies and how often:
// what a view file holds is what was applied to it, whoever says otherwise.
const RECORDING = writeProcessor(`
const seen = (e, ctx) => ctx.db.prepare("INSERT INTO applied (seq, times) VALUES (?, 1) ON CONFLICT (seq) DO UPDATE SET times = times + 1").run(e.seq);
export default {
  name: "orders_by_user",
  subjects: ["order.*"],
  schema: [${JSON.stringify(TOTALS)}, ${JSON.stringify(APPLIED)}],
  on: {
    "order.placed": (e, ctx) => {
      ctx.db.prepare("INSERT INTO totals (user_id, orders, amount) VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1, amount = round(amount + excluded.amount, 2)").run(e.data.user, e.data.amount);
      seen(e, ctx);
    },
    "order.refunded": (e, ctx) => {
      ctx.db.prepare("UPDATE totals SET orders = orders - 1, amount = round(amount - ?, 2) WHERE user_id = ?").run(e.data.amount, e.data.user);
      seen(e, ctx);
    },
  },
};
`);

/** The `applied` table of a view file: [seq, times] in order. */
function appliedRows(file: string): [number, number][] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT seq, times FROM applied ORDER BY seq").raw(true).all() as [number, number][]);
  } finally {
    db.close();
  }
}

describe("joining from a snapshot (3-server cluster)", () => {
  it("a new replica restores the newest snapshot, replays only the tail, and ends with the full-replay digest", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = [...generateOrders(6000, 601)];
    const isHandled = (e: (typeof events)[number]) => e.type === "order.placed" || e.type === "order.refunded";
    const handled = (es: typeof events) => es.filter(isHandled).length;
    await env.append(events.slice(0, 5000));
    const d1 = new DataDir(join(env.dir, "w1"));
    const d2 = new DataDir(join(env.dir, "w2"));
    const w1 = await env.startWorker(d1, undefined, { workerId: "w1" });
    await deployModule(env.nc, env.spec, RECORDING);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await waitFor(() => readCheckpoint(d1.viewFile("orders_by_user", 1)) === 5000, 30_000, "w1 at 5000");
    // The record of what was applied starts empty in the copy about to be taken: from here on, a file holds in
    // `applied` exactly what was applied to it after the snapshot (a full replay would bring back 1..5000).
    const w1file = new Database(d1.viewFile("orders_by_user", 1), { timeout: 10_000 });
    expect(w1file.prepare("DELETE FROM applied").run().changes).toBe(handled(events.slice(0, 5000)));
    w1file.close();

    // Through the binary (not blocking this process: the worker runs in it): a worker holding the version takes the copy.
    const out = await kappaAsync(["--nats", env.nats.url, "--json", "snapshot", "orders_by_user"]);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ processor: "orders_by_user", version: 1, checkpoint: 5000, worker: "w1" });

    await env.append(events.slice(5000));
    const lines: string[] = [];
    const w2 = await env.startWorker(d2, (l) => lines.push(l), { workerId: "w2" });
    const files = [d1, d2].map((d) => d.viewFile("orders_by_user", 1));
    await waitFor(() => files.every((f) => readCheckpoint(f) === 6000), 30_000, "both at 6000");
    expect(w2.runners.get("orders_by_user/1")!.restoredFrom).toBe(5000);
    expect(lines.join("\n")).toMatch(/joined from the snapshot at 5000/);
    // Only the tail was applied, each of its events once: seqs 5001..6000 that orders_by_user handles, not one before.
    const tail = events.flatMap((e, i) => (i >= 5000 && isHandled(e) ? [[i + 1, 1] as [number, number]] : []));
    expect(appliedRows(files[1]!)).toEqual(tail);
    expect(appliedRows(files[0]!)).toEqual(tail);
    const reference = referenceDigestOf([TOTALS, APPLIED], { totals: referenceTotals(events, true).map((r) => [r.user_id, r.orders, r.amount]), applied: tail });
    expect(digestFile(files[0]!).digest).toBe(reference);
    expect(digestFile(files[1]!).digest).toBe(reference);
    expect(w1.runners.get("orders_by_user/1")!.restoredFrom).toBeUndefined();

    // Retention: older snapshots are pruned.
    const store = await SnapshotStore.open(env.nc, env.spec.stream);
    await store.take(files[0]!, "orders_by_user", 1, 3);
    expect((await store.list("orders_by_user", 1)).map((s) => s.checkpoint)).toEqual([6000, 5000]);
    await store.take(files[0]!, "orders_by_user", 1, 1);
    expect((await store.list("orders_by_user", 1)).map((s) => s.checkpoint)).toEqual([6000]);
  }, 120_000);
});
