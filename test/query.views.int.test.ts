import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext, kappa } from "./support/cli.js";
import { writeProcessor } from "./support/processors.js";
import { deployModule } from "../src/processors/index.js";
import { QueryPool, queryViews } from "../src/views/index.js";
import { recordSource } from "../src/cli/records.js";
import { startHttpServer, type HttpServer } from "../src/cli/http/index.js";
import { generateOrders, type OrderEvent } from "../examples/orders/generate.js";

const ORDERS = resolve("examples/orders/orders_by_user.ts");
// A second view over the same log: items per user (refunds subtract), in a table named `spend`.
const SPEND = writeProcessor(`
export default {
  name: "spend",
  subjects: ["order.*"],
  schema: ["CREATE TABLE spend (user_id TEXT PRIMARY KEY, items INTEGER NOT NULL, refunds INTEGER NOT NULL)"],
  on: {
    "order.placed": (e, ctx) => ctx.db.prepare("INSERT INTO spend VALUES (?, ?, 0) ON CONFLICT (user_id) DO UPDATE SET items = items + excluded.items").run(e.data.user, e.data.quantity),
    "order.refunded": (e, ctx) => ctx.db.prepare("UPDATE spend SET refunds = refunds + 1 WHERE user_id = ?").run(e.data.user),
  },
};
`);

const JOIN = "SELECT user_id, t.orders, s.items, s.refunds FROM orders_by_user.totals t JOIN spend.spend s USING (user_id) ORDER BY user_id";

let env: TestEnv;
let pool: QueryPool;
let server: HttpServer;
let events: OrderEvent[];

/** The join computed straight from the events (the first `upTo` of them). */
function reference(upTo = events.length): { user_id: string; orders: number; items: number; refunds: number }[] {
  const m = new Map<string, { orders: number; items: number; refunds: number }>();
  for (const e of events.slice(0, upTo)) {
    const d = e.data as { user: string; quantity: number };
    if (e.type === "order.placed") {
      const r = m.get(d.user) ?? { orders: 0, items: 0, refunds: 0 };
      r.orders++;
      r.items += d.quantity;
      m.set(d.user, r);
    } else if (e.type === "order.refunded") {
      const r = m.get(d.user);
      if (r) r.refunds++;
    }
  }
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([user_id, r]) => ({ user_id, ...r }));
}

beforeAll(async () => {
  env = await TestEnv.start();
  events = await env.appendOrders(2000, 21);
  await env.startWorker();
  await deployModule(env.nc, env.spec, ORDERS);
  await deployModule(env.nc, env.spec, SPEND);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  await env.waitForRecord("spend", (r) => r.live === 1);
  pool = new QueryPool(2);
  server = await startHttpServer(cliContext(env), { port: 0 });
  await waitFor(() => server.health().reachable, 30_000, "the server to reach NATS");
}, 60_000);

afterAll(async () => {
  await server?.close();
  await pool?.close();
  await env?.close();
});

const views = [{ processor: "orders_by_user" }, { processor: "spend" }];

describe("SQL across views", () => {
  it("joins two views by name, after both applied --min-seq, and names each one's version and sequence", async () => {
    const a = await queryViews(env.dataDir, recordSource(cliContext(env)), pool, { views, sql: JOIN, minSeq: events.length, limit: 100_000 });
    expect(a.views).toEqual([
      { processor: "orders_by_user", version: 1, seq: events.length },
      { processor: "spend", version: 1, seq: events.length },
    ]);
    expect(a.rows).toEqual(reference());
    expect(a.rows.length).toBeGreaterThan(100);
  });

  it("reads each view under one snapshot that matches the sequence it reports, while events arrive", async () => {
    const more = [...generateOrders(3000, 21)].slice(2000);
    events = [...events, ...more];
    let appended = false;
    const appending = (async () => {
      for (let i = 0; i < more.length; i += 50) {
        await env.append(more.slice(i, i + 50));
        await new Promise((r) => setTimeout(r, 15));
      }
      appended = true;
    })();
    const sql = "SELECT (SELECT sum(orders) FROM orders_by_user.totals) AS orders, (SELECT sum(items) FROM spend.spend) AS items, (SELECT count(*) FROM orders_by_user.totals) AS users";
    let seen = 0;
    while (!appended) {
      const a = await queryViews(env.dataDir, recordSource(cliContext(env)), pool, { views, sql });
      const [o, s] = a.views;
      const refO = reference(o!.seq);
      const refS = reference(s!.seq);
      expect(a.rows[0]).toEqual({ orders: refO.reduce((n, r) => n + r.orders, 0), items: refS.reduce((n, r) => n + r.items, 0), users: refO.length });
      if (o!.seq > 2000 && o!.seq < events.length) seen++;
    }
    await appending;
    expect(seen).toBeGreaterThan(0); // the loop did run while the views were moving
  });

  it("keeps users from attaching anything, and names only the views asked for", async () => {
    const ctx = cliContext(env);
    await expect(queryViews(env.dataDir, recordSource(ctx), pool, { views, sql: "ATTACH DATABASE '/tmp/x.db' AS x" })).rejects.toMatchObject({ code: "QUERY_REFUSED" });
    await expect(queryViews(env.dataDir, recordSource(ctx), pool, { views: [{ processor: "spend" }], sql: "SELECT * FROM orders_by_user.totals" })).rejects.toThrow(/no such table: orders_by_user.totals/);
    await expect(queryViews(env.dataDir, recordSource(ctx), pool, { views, sql: "SELECT * FROM spend.spend; DELETE FROM spend.spend" })).rejects.toMatchObject({ code: "QUERY_REFUSED" });
    await expect(queryViews(env.dataDir, recordSource(ctx), pool, { views: [{ processor: "nope" }], sql: "SELECT 1" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("answers over HTTP (POST /query) and from the CLI (kappa query --views)", async () => {
    const res = await fetch(server.url + "/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ views: ["orders_by_user", "spend"], sql: JOIN, minSeq: events.length, limit: 100_000 }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { views: { seq: number }[]; rows: unknown[] };
    expect(body.views.map((v) => v.seq)).toEqual([events.length, events.length]);
    expect(body.rows).toEqual(reference());
    const bad = await fetch(server.url + "/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ views: ["spend"], sql: "SELECT 1", version: 2 }) });
    expect(bad.status).toBe(400);
    // View names reach file paths and ATTACH: anything but a processor name (and one version) is refused.
    for (const v of ["../../etc/passwd", "spend/../orders_by_user", "spend@1@2", "spend@../x", "spend@0", "Spend", "main"]) {
      const r = await fetch(server.url + "/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ views: [v], sql: "SELECT 1" }) });
      expect(r.status, v).toBe(400);
    }

    const cli = kappa(["--nats", env.server.url, "--data-dir", env.dataDir.root, "--json", "query", "--views", "orders_by_user,spend", JOIN, "--min-seq", String(events.length), "--limit", "100000"]);
    expect(cli.code, cli.stderr).toBe(0);
    const out = JSON.parse(cli.stdout);
    expect(out.views).toEqual([{ processor: "orders_by_user", version: 1, seq: events.length }, { processor: "spend", version: 1, seq: events.length }]);
    expect(out.rows).toEqual(reference());
  });
});
