import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { appendEvents, logTypes } from "../src/log/index.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { digestDb, digestFile, readCheckpoint } from "../src/views/index.js";
import { versionedOrders, type VersionedEvent } from "../examples/schemas/generate.js";

const BY_CUSTOMER = resolve("examples/schemas/orders_by_customer.ts");
const NO_UPCASTERS = resolve("examples/orders/orders_by_user_v2.ts");

async function appendVersioned(env: TestEnv, events: Iterable<VersionedEvent>): Promise<void> {
  await appendEvents(env.nc, env.spec, (function* () {
    for (const e of events) yield { type: e.type, id: e.id, json: JSON.stringify(e.data), ...(e.schemaVersion !== 1 ? { schemaVersion: e.schemaVersion } : {}) };
  })());
}

/** orders_by_customer computed directly from the generator's events, as a digest. */
function referenceDigest(events: Iterable<VersionedEvent>): string {
  const m = new Map<string, { orders: number; cents: number }>();
  for (const e of events) {
    if (e.type === "order.placed") {
      const d = e.data as { customer: { id: string }; amount_cents: number };
      const t = m.get(d.customer.id) ?? { orders: 0, cents: 0 };
      m.set(d.customer.id, { orders: t.orders + 1, cents: t.cents + d.amount_cents });
    } else if (e.type === "order.refunded") {
      const d = e.data as { user: string; amount: number };
      const t = m.get(d.user);
      if (t) m.set(d.user, { orders: t.orders - 1, cents: t.cents - Math.round(d.amount * 100) });
    }
  }
  const db = new Database(":memory:");
  db.exec("CREATE TABLE kappa_checkpoint (id INTEGER PRIMARY KEY, seq INTEGER); INSERT INTO kappa_checkpoint VALUES (1, 0);");
  db.exec("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, cents INTEGER NOT NULL)");
  const ins = db.prepare("INSERT INTO customers VALUES (?, ?, ?)");
  for (const [k, t] of m) ins.run(k, t.orders, t.cents);
  const d = digestDb(db).digest;
  db.close();
  return d;
}

async function buildDigest(mode: "mixed" | "newest"): Promise<{ digest: string; again: string; types: Awaited<ReturnType<typeof logTypes>>; warnings: number }> {
  await using env = await TestEnv.start();
  await appendVersioned(env, versionedOrders(2400, 51, mode));
  await env.startWorker();
  const dep = await deployModule(env.nc, env.spec, BY_CUSTOMER, { checkSchemas: true });
  await env.waitForRecord("orders_by_customer", (r) => r.live === 1);
  const again = await replayProcessor(env.nc, env.spec, "orders_by_customer", { from: "start" });
  await env.waitForRecord("orders_by_customer", (r) => r.versions[String(again.version.version)]!.state === "caught-up");
  const f1 = env.dataDir.viewFile("orders_by_customer", 1);
  const f2 = env.dataDir.viewFile("orders_by_customer", 2);
  await waitFor(() => readCheckpoint(f1) === 2400 && readCheckpoint(f2) === 2400, 10_000, "both at head");
  return { digest: digestFile(f1).digest, again: digestFile(f2).digest, types: await logTypes(env.js, env.jsm, env.spec), warnings: dep.warnings!.length };
}

describe("schema evolution: upcasters", () => {
  it("a log with three schema versions of order.placed builds the same view as one written only in the newest shape, on every replay", async () => {
    const mixed = await buildDigest("mixed");
    const newest = await buildDigest("newest");
    const expected = referenceDigest(versionedOrders(2400, 51, "newest"));
    expect(mixed.digest).toBe(expected);
    expect(mixed.again).toBe(expected);
    expect(newest.digest).toBe(expected);
    expect(newest.again).toBe(expected);
    expect([mixed.warnings, newest.warnings]).toEqual([0, 0]);

    // log types: counts per schema version, an example of each shape.
    const placed = mixed.types.filter((t) => t.type === "order.placed");
    expect(placed.map((t) => t.version)).toEqual([1, 2, 3]);
    const all = [...versionedOrders(2400, 51, "mixed")].filter((e) => e.type === "order.placed");
    expect(placed.map((t) => t.count)).toEqual([1, 2, 3].map((v) => all.filter((e) => e.schemaVersion === v).length));
    expect(Object.keys(placed[0]!.example as object)).toContain("user");
    expect(Object.keys(placed[1]!.example as object)).toContain("customer");
    expect(Object.keys(placed[2]!.example as object)).toContain("amount_cents");
    expect(newest.types.filter((t) => t.type === "order.placed").map((t) => t.version)).toEqual([3]);
  });

  it("deploy warns, naming them, about schema versions of handled types that have no upcaster", async () => {
    await using env = await TestEnv.start();
    await appendVersioned(env, versionedOrders(600, 52, "mixed"));
    await appendVersioned(env, [{ type: "order.placed", id: "x4", schemaVersion: 4, data: { order: "x", customer: { id: "u1" }, price: { cents: 5 } } }]);
    const plain = await deployModule(env.nc, env.spec, NO_UPCASTERS, { checkSchemas: true });
    expect(plain.warnings!.map((w) => [w.type, w.version])).toEqual([["order.placed", 2], ["order.placed", 3], ["order.placed", 4]]);
    expect(plain.warnings![0]!.message).toMatch(/schema version 2 of order\.placed .* orders_by_user has no upcaster/);
    // SQL processors have no upcasters: every version above 1 of a type they handle is named.
    const sql = await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user.sql"), { checkSchemas: true });
    expect(sql.warnings!.map((w) => [w.type, w.version])).toEqual([["order.placed", 2], ["order.placed", 3], ["order.placed", 4]]);
    const upcasting = await deployModule(env.nc, env.spec, BY_CUSTOMER, { checkSchemas: true });
    // A frozen version reads nothing after its --until: the v4 event past it is not its concern.
    const frozen = await deployModule(env.nc, env.spec, BY_CUSTOMER, { checkSchemas: true, until: "600" });
    expect(frozen.warnings).toEqual([]);
    expect(upcasting.warnings!.map((w) => [w.type, w.version, w.count, w.firstSeq])).toEqual([["order.placed", 4, 1, 601]]);
  });
});
