import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import pageviews from "../examples/pageviews/pageviews.js";
import { generatePageViews } from "../examples/pageviews/generate.js";
import type { KappaEvent, ProcessorContext } from "../src/processors/define.js";
import { seededRandom } from "../src/processors/random.js";

const STATE_SQL = readFileSync(new URL("../migrations/003_state.sql", import.meta.url), "utf8");
const dir = mkdtempSync(join(tmpdir(), "kappa-pageviews-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EVENTS: KappaEvent[] = [...generatePageViews(3000, 7)].map((e, i) => ({ seq: i + 1, type: e.type, id: e.id, time: e.data.ts, data: e.data }));

/** Builds the view the way a worker would: Kappa's state tables, the processor's schema, batches in transactions. */
function build(path: string): Database.Database {
  const db = new Database(path);
  // The platform's view writer caches `prepare`, so processors may prepare per event; do the same here.
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, ReturnType<typeof prepare>>();
  db.prepare = ((sql: string) => cache.get(sql) ?? cache.set(sql, prepare(sql)).get(sql)!) as typeof db.prepare;
  db.exec(STATE_SQL);
  for (const sql of pageviews.schema) db.exec(sql);
  for (let b = 0; b < EVENTS.length; b += 500) {
    db.transaction(() => {
      for (const event of EVENTS.slice(b, b + 500)) {
        const ctx: ProcessorContext = { db, processor: "pageviews", version: 1, random: seededRandom(`pageviews/${event.seq}`), emit: () => {} };
        pageviews.apply(event, ctx);
      }
    })();
  }
  return db;
}

/** Every table (Kappa's included), as a SHA-256 of its rows in order: comparing 100 KiB sketches byte by byte in JS is slow. */
function dump(db: Database.Database): Record<string, string> {
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name").pluck().all() as string[];
  return Object.fromEntries(tables.map((t) => {
    const columns = (db.prepare("SELECT count(*) FROM pragma_table_info(?)").pluck().get(t) as number);
    const h = createHash("sha256");
    for (const row of db.prepare(`SELECT * FROM "${t}" ORDER BY ${Array.from({ length: columns }, (_, i) => i + 1).join(", ")}`).raw().iterate() as Iterable<unknown[]>) {
      h.update(row.map((v) => (Buffer.isBuffer(v) ? `x${v.toString("hex")}` : JSON.stringify(v))).join("|") + "\n");
    }
    return [t, h.digest("hex")];
  }));
}

describe("the pageviews example", () => {
  it("generates the same events from the same seed, and different ones from another", () => {
    expect([...generatePageViews(50, 7)]).toEqual([...generatePageViews(50, 7)]);
    expect([...generatePageViews(50, 8)]).not.toEqual([...generatePageViews(50, 7)]);
  });

  it("builds identical tables, state included, when run twice over the same events", () => {
    const a = build(join(dir, "a.sqlite"));
    const b = build(join(dir, "b.sqlite"));
    const first = dump(a);
    expect(dump(b)).toEqual(first);
    expect(Object.keys(first)).toEqual(expect.arrayContaining(["kappa_state", "kappa_late_events", "requests_per_minute", "unique_users_5m", "latency_last_100", "session_sample", "top_pages"]));
    const one = (sql: string) => a.prepare(sql).pluck().get() as number;
    // Every view is counted once in its minute, or recorded as late.
    expect(one("SELECT sum(count) FROM requests_per_minute") + one("SELECT count(*) FROM kappa_late_events WHERE window_name = 'requests_per_minute'")).toBe(EVENTS.length);
    expect(one("SELECT count(*) FROM kappa_late_events")).toBeGreaterThan(0);
    expect(one("SELECT count(*) FROM top_pages")).toBe(10);
    expect(one("SELECT count(*) FROM session_sample")).toBe(100);
    expect(one("SELECT max(count) FROM latency_last_100")).toBe(100);
    const exact = new Set(EVENTS.map((e) => (e.data as { user: string }).user)).size;
    const users = a.prepare("SELECT CAST(value AS INTEGER) FROM unique_users_5m ORDER BY count DESC LIMIT 1").pluck().get() as number;
    expect(users).toBeGreaterThan(0);
    expect(users).toBeLessThanOrEqual(exact * 1.05);
    expect(a.prepare("SELECT page FROM top_pages ORDER BY views DESC LIMIT 1").pluck().get()).toBe("/");
    a.close();
    b.close();
  });
});
