import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { resolve } from "node:path";
import { TestEnv } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { newProcessorRecord } from "../src/views/index.js";
import { startHttpServer, type HttpServer } from "../src/cli/http/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

let env: TestEnv;
let server: HttpServer;

/** POSTs a query body (or raw text) and returns the status and parsed JSON. */
async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(server.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function get(path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(server.url + path);
  return { status: res.status, json: await res.json() };
}

const query = (body: Record<string, unknown>) => post("/views/orders_by_user/query", body);

beforeAll(async () => {
  env = await TestEnv.start();
  await env.appendOrders(300, 11);
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  server = await startHttpServer(cliContext(env), { port: 0 });
});

afterAll(async () => {
  await server?.close();
  await env?.close();
});

describe("HTTP queries: POST /views/:processor/query", () => {
  it("answers a SELECT with the version and sequence it reflects", async () => {
    const r = await query({ sql: "SELECT count(*) AS n FROM totals", minSeq: 300 });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ processor: "orders_by_user", version: 1, truncated: false, columns: ["n"] });
    expect(r.json.seq).toBeGreaterThanOrEqual(300);
    expect(r.json.rows[0].n).toBeGreaterThan(0);
  });

  it("binds named params, caps rows at limit and says so", async () => {
    const r = await query({ sql: "SELECT user_id FROM totals WHERE orders >= :min ORDER BY user_id", params: { min: 1 }, limit: 3 });
    expect(r.status).toBe(200);
    expect(r.json.rows).toHaveLength(3);
    expect(r.json.truncated).toBe(true);
  });

  it("sees an appended event at once with minSeq (read-your-writes)", async () => {
    for (let i = 0; i < 5; i++) {
      const seq = await env.append([{ type: "order.placed", id: `ryw-${i}`, data: { order: `ryw-${i}`, user: `ryw_user_${i}`, product: "p1", amount: 42, quantity: 1 } }]);
      const r = await query({ sql: "SELECT user_id, orders, amount FROM totals WHERE user_id = :u", params: { u: `ryw_user_${i}` }, minSeq: seq });
      expect(r.status).toBe(200);
      expect(r.json.seq).toBeGreaterThanOrEqual(seq);
      expect(r.json.rows).toEqual([{ user_id: `ryw_user_${i}`, orders: 1, amount: 42 }]);
    }
  });

  it("times out a minSeq the view has not reached with 504", async () => {
    const r = await query({ sql: "SELECT 1 AS x", minSeq: 1_000_000, timeoutMs: 200 });
    expect(r.status).toBe(504);
    expect(r.json.error).toBe("MIN_SEQ_TIMEOUT");
    expect(r.json.hint).toBeTruthy();
  });

  const refused: [string, string, RegExp][] = [
    ["INSERT", "INSERT INTO totals (user_id, orders, amount) VALUES ('x', 1, 1)", /only SELECT/],
    ["UPDATE", "UPDATE totals SET orders = 0", /only SELECT/],
    ["DELETE", "DELETE FROM totals", /only SELECT/],
    ["REPLACE", "REPLACE INTO totals VALUES ('x', 1, 1)", /only SELECT/],
    ["CREATE", "CREATE TABLE evil (x)", /only SELECT/],
    ["DROP", "DROP TABLE totals", /only SELECT/],
    ["ALTER", "ALTER TABLE totals ADD COLUMN y", /only SELECT/],
    ["ATTACH", "ATTACH DATABASE '/tmp/kappa-evil.db' AS evil", /only SELECT/],
    ["ATTACH inside a SELECT", "SELECT 1 FROM totals WHERE 1 = 1; ATTACH '/tmp/kappa-evil.db' AS evil", /ATTACH is not allowed/],
    ["PRAGMA write", "PRAGMA journal_mode = DELETE", /only SELECT/],
    ["VACUUM", "VACUUM", /only SELECT/],
    ["load_extension", "SELECT load_extension('/tmp/evil.so')", /loading extensions is not allowed/],
    ["a write hidden in a CTE", "WITH x AS (SELECT 1) DELETE FROM totals", /read-only/],
    ["a second statement", "SELECT 1; DROP TABLE totals", /read-only/],
    ["a transaction", "BEGIN IMMEDIATE", /only SELECT/],
  ];
  it.each(refused)("refuses %s with 400 and a clear message", async (_kind, sql, why) => {
    const r = await query({ sql });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("QUERY_REFUSED");
    expect(r.json.message).toMatch(why);
    expect(r.json.hint).toMatch(/read-only|processors/);
  });

  it("stops a runaway query at its timeout and keeps serving", async () => {
    // 10^12 rows would take hours: an answer at all means it was stopped (the message says when).
    const r = await query({ sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000) SELECT count(*) AS n FROM c", timeoutMs: 300 });
    expect(r.status).toBe(504);
    expect(r.json).toMatchObject({ error: "QUERY_TIMEOUT", message: "query stopped after 300 ms" });
    const after = await query({ sql: "SELECT count(*) AS n FROM totals" });
    expect(after.status).toBe(200);
    expect(after.json.rows[0].n).toBeGreaterThan(0);
  });

  it("answers a statement that fails in SQLite with 400 and its reason", async () => {
    const two = await query({ sql: "SELECT 1; SELECT 2" });
    expect(two.status).toBe(400);
    expect(two.json.message).toMatch(/more than one statement/);
    const table = await query({ sql: "SELECT * FROM nope" });
    expect(table.status).toBe(400);
    expect(table.json.message).toMatch(/no such table: nope/);
  });

  it("rejects bad bodies with 400, 413 and 415 as JSON", async () => {
    expect((await post("/views/orders_by_user/query", "{not json")).status).toBe(400);
    const unknown = await query({ sql: "SELECT 1", minseq: 3 });
    expect(unknown.status).toBe(400);
    expect(unknown.json.message).toMatch(/unknown field minseq/);
    expect((await query({ params: {} })).json.message).toMatch(/body\.sql is missing/);
    expect((await query({ sql: 7 })).json.message).toMatch(/^sql must be a string$/);
    expect((await query({ sql: "SELECT 1", limit: 0 })).status).toBe(400);
    expect((await query({ sql: "SELECT 1", timeoutMs: 10_000_000 })).status).toBe(400);
    const big = await query({ sql: `SELECT '${"x".repeat(70 * 1024)}' AS big` });
    expect(big.status).toBe(413);
    expect(big.json.error).toBe("BODY_TOO_LARGE");
    const text = await post("/views/orders_by_user/query", "SELECT 1", { "content-type": "text/plain" });
    expect(text.status).toBe(415);
    expect(text.json.error).toBe("UNSUPPORTED_MEDIA_TYPE");
  });

  it("answers unknown processors, versions and routes with 404, bad names with 400", async () => {
    const p = await post("/views/nope/query", { sql: "SELECT 1" });
    expect(p.status).toBe(404);
    expect(p.json).toMatchObject({ error: "NOT_FOUND" });
    expect(p.json.message).toMatch(/nope is not deployed/);
    expect((await query({ sql: "SELECT 1", version: 9 })).status).toBe(404);
    expect((await post("/views/Bad-Name/query", { sql: "SELECT 1" })).status).toBe(400);
    const route = await get("/nowhere");
    expect(route.status).toBe(404);
    expect(route.json.hint).toMatch(/\/views/);
  });

  it("says 503 with Retry-After while a processor has no live version yet", async () => {
    const cat = await env.catalog();
    await cat.mutate("not_live_yet", () => {
      const rec = newProcessorRecord("not_live_yet");
      rec.versions["1"] = { version: 1, codeHash: "0".repeat(64), codeKind: "js", from: "start", startSeq: 1, subjects: [], state: "building", createdAt: new Date().toISOString() };
      rec.nextVersion = 2;
      return rec;
    });
    const res = await fetch(server.url + "/views/not_live_yet/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT 1" }) });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as { error: string }).error).toBe("NO_LIVE_VERSION");
  });
});

describe("HTTP named queries and listings", () => {
  it("runs a named query with query-string params bound as numbers", async () => {
    const r = await get("/views/orders_by_user/queries/top_users?n=3");
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ processor: "orders_by_user", version: 1, named: "top_users", columns: ["user_id", "orders", "amount"] });
    expect(r.json.rows).toHaveLength(3);
    const direct = await query({ sql: "SELECT user_id, orders, amount FROM totals ORDER BY amount DESC, user_id LIMIT 3", minSeq: r.json.seq });
    expect(r.json.rows).toEqual(direct.json.rows);
  });

  it("answers an unknown named query with 404 naming the ones that exist, a missing param with 400", async () => {
    const r = await get("/views/orders_by_user/queries/nope");
    expect(r.status).toBe(404);
    expect(r.json.hint).toMatch(/top_users/);
    const missing = await get("/views/orders_by_user/queries/top_users");
    expect(missing.status).toBe(400);
    expect(missing.json.message).toMatch(/parameter/i);
  });

  it("lists processors with their live version and lag, and one processor's versions", async () => {
    const all = await get("/views");
    expect(all.status).toBe(200);
    const p = all.json.processors.find((x: { name: string }) => x.name === "orders_by_user");
    expect(p).toMatchObject({ name: "orders_by_user", live: 1, versions: [{ version: 1, state: "live" }], queries: ["top_users"] });
    expect(typeof p.lag).toBe("number");
    const one = await get("/views/orders_by_user");
    expect(one.status).toBe(200);
    expect(one.json.versions[0]).toMatchObject({ version: 1, state: "live", live: true });
    expect(one.json.versions[0].checkpoint).toBeGreaterThanOrEqual(300);
    expect((await get("/views/nope")).status).toBe(404);
  });
});
