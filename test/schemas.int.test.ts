import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { appendEvents, logTypes } from "../src/log/index.js";
import { deployModule, replayProcessor, type SchemaWarning } from "../src/processors/index.js";
import { Catalog, digestDb, digestFile, readCheckpoint } from "../src/views/index.js";
import { waitForVersion } from "../src/cli/wait.js";
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
  await deployModule(env.nc, env.spec, BY_CUSTOMER);
  const rec = await env.waitForRecord("orders_by_customer", (r) => r.live === 1);
  const again = await replayProcessor(env.nc, env.spec, "orders_by_customer", { from: "start" });
  await env.waitForRecord("orders_by_customer", (r) => r.versions[String(again.version.version)]!.state === "caught-up");
  const f1 = env.dataDir.viewFile("orders_by_customer", 1);
  const f2 = env.dataDir.viewFile("orders_by_customer", 2);
  await waitFor(() => readCheckpoint(f1) === 2400 && readCheckpoint(f2) === 2400, 10_000, "both at head");
  return { digest: digestFile(f1).digest, again: digestFile(f2).digest, types: await logTypes(env.js, env.jsm, env.spec), warnings: rec.versions["1"]!.schemaWarnings?.length ?? 0 };
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

  it("the build names the schema versions of handled types that have no upcaster: in the failure an unknown shape causes, and in the catch-up", async () => {
    await using env = await TestEnv.start();
    const mixed = [...versionedOrders(600, 52, "mixed")];
    await appendVersioned(env, mixed);
    await appendVersioned(env, [{ type: "order.placed", id: "x4", schemaVersion: 4, data: { order: "x", customer: { id: "u1" }, price: { cents: 5 } } }]);
    await env.startWorker();
    const cat = await Catalog.open(env.nc, env.spec.stream);
    const seqOf = (v: number) => mixed.findIndex((e) => e.type === "order.placed" && e.schemaVersion === v) + 1;
    const v2Before = (seq: number) => mixed.slice(0, seq - 1).filter((e) => e.type === "order.placed" && e.schemaVersion === 2).length;

    // orders_by_user knows only v1: v2 events go in (a NULL user), the first v3 one fails it, and the failure says why.
    const plain = await deployModule(env.nc, env.spec, NO_UPCASTERS);
    const seen: SchemaWarning[] = [];
    const err = (await waitForVersion(cat, "orders_by_user", plain.version.version, { quiet: true, onSchemaWarning: (w) => seen.push(w) }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`failed at event ${seqOf(3)} \\(order\\.placed\\): orders_by_user threw: NOT NULL constraint failed: totals\\.amount — the event has schema version 3 of order\\.placed, which orders_by_user has no upcaster for \\(newest it knows: v1\\)`));
    expect(seen.map((w) => [w.type, w.version, w.count, w.firstSeq])).toEqual([["order.placed", 2, v2Before(seqOf(3)), seqOf(2)]]);
    expect(seen[0]!.message).toMatch(/the log holds schema version 2 of order\.placed \(\d+ events?, first at seq \d+\) and orders_by_user has no upcaster for it \(newest it knows: v1\)/);
    expect((await cat.require("orders_by_user")).versions[String(plain.version.version)]!.schemaWarnings!.map((n) => n.version)).toEqual([2]);

    // SQL processors have no upcasters: the first event above v1 of a type they handle is named.
    const sql = await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user.sql"));
    const sqlErr = (await waitForVersion(cat, "orders_by_user", sql.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(sqlErr.message).toMatch(/the event has schema version [23] of order\.placed, which orders_by_user has no upcaster for \(newest it knows: v1\)/);

    // Upcasters reach v3: the v4 event past them is the one named.
    const upcasting = await deployModule(env.nc, env.spec, BY_CUSTOMER);
    const upErr = (await waitForVersion(cat, "orders_by_customer", upcasting.version.version, { quiet: true }).catch((e: Error) => e)) as Error;
    expect(upErr.message).toMatch(/failed at event 601 .* the event has schema version 4 of order\.placed, which orders_by_customer has no upcaster for \(newest it knows: v3\); declare upcasters: \{ "order\.placed": \[v1ToV2, v2ToV3, v3ToV4\] \}/);
    // A frozen version reads nothing after its --until: the v4 event past it is not its concern.
    const frozen = await deployModule(env.nc, env.spec, BY_CUSTOMER, { until: "600" });
    const done = await waitForVersion(cat, "orders_by_customer", frozen.version.version, { quiet: true });
    expect(done.schemaWarnings).toBeUndefined();
  });

  it("an event of a version the code cannot upcast, midway through a long log, is named during the build with where it is and counted exactly", async () => {
    await using env = await TestEnv.start();
    const before = [...versionedOrders(20_000, 53, "newest")];
    await appendVersioned(env, before);
    await appendVersioned(env, [{ type: "order.placed", id: "odd", schemaVersion: 5, data: { order: "x", customer: { id: "u1" }, amount_cents: 7 } }]);
    await appendVersioned(env, versionedOrders(20_000, 54, "newest"));
    await env.startWorker();
    const cat = await Catalog.open(env.nc, env.spec.stream);
    const dep = await deployModule(env.nc, env.spec, BY_CUSTOMER);
    const seen: SchemaWarning[] = [];
    const done = await waitForVersion(cat, "orders_by_customer", dep.version.version, { quiet: true, onSchemaWarning: (w) => seen.push(w) });
    // The handlers take that shape, so the version builds, with the warning deploy used to give before it.
    expect(done.state).toBe("live");
    expect(seen.map((w) => [w.type, w.version, w.firstSeq, w.newest])).toEqual([["order.placed", 5, 20_001, 3]]);
    expect(seen[0]!.message).toMatch(/^the log holds schema version 5 of order\.placed \((1 event, )?first at seq 20001\) and orders_by_customer has no upcaster for it \(newest it knows: v3\) — its handlers get that shape unchanged; declare upcasters: \{ "order\.placed": \[v1ToV2, v2ToV3, v3ToV4, v4ToV5\] \}$/);
    expect(done.schemaWarnings).toEqual([{ type: "order.placed", version: 5, count: 1, firstSeq: 20_001, lastSeq: 20_001, newest: 3 }]);
    // `--no-schema-check`: the same build notes nothing.
    const quiet = await deployModule(env.nc, env.spec, BY_CUSTOMER, { checkSchemas: false, from: "2" });
    expect((await waitForVersion(cat, "orders_by_customer", quiet.version.version, { quiet: true })).schemaWarnings).toBeUndefined();
  });
});
