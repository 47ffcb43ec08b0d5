import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { seededRandom } from "../src/processors/random.js";
import { countMinStore, hyperLogLogStore, reservoirStore, runningStatsStore, SynopsisStore, RunningStats } from "../src/processors/synopses/index.js";

const STATE_SQL = readFileSync(new URL("../migrations/003_state.sql", import.meta.url), "utf8");
const dir = mkdtempSync(join(tmpdir(), "kappa-synopses-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openDb(path = ":memory:"): Database.Database {
  const db = new Database(path);
  if (!db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'kappa_state'").get()) db.exec(STATE_SQL);
  return db;
}
/** The bytes stored for a key: its pages (rows `<JSON key> 0x01 <page>`) concatenated. */
function stored(db: Database.Database, name: string, key: string): Buffer | undefined {
  const k = JSON.stringify(key);
  const pages = db.prepare("SELECT value FROM kappa_state WHERE name = ? AND key > ? AND key < ? ORDER BY key").pluck().all(name, `${k}\u0001`, `${k}\u0002`) as Buffer[];
  return pages.length ? Buffer.concat(pages) : undefined;
}

describe("SynopsisStore", () => {
  it("writes every change through to kappa_state inside the caller's transaction", () => {
    const db = openDb();
    const ctx = { db, processor: "p" };
    const stats = runningStatsStore("latency");
    db.transaction(() => { for (const x of [3, 1, 4]) stats.update(ctx, "page-a", (s) => s.add(x)); })();
    const bytes = stored(db, "synopsis:latency", "page-a")!;
    expect(RunningStats.deserialize(bytes).toJSON()).toMatchObject({ count: 3, sum: 8, min: 1, max: 4 });
    expect(stats.get(ctx, "missing")).toBeUndefined();
    expect(stored(db, "synopsis:latency", "missing")).toBeUndefined();
  });

  it("a rolled-back transaction (or savepoint) leaves neither the state nor the cache changed", () => {
    const db = openDb();
    const ctx = { db };
    const stats = runningStatsStore("s");
    const boom = new Error("boom");
    // The very first use, TEMP table and all, is rolled back.
    expect(() => db.transaction(() => { stats.update(ctx, "k", (s) => s.add(100)); throw boom; })()).toThrow(boom);
    expect(stats.get(ctx, "k")).toBeUndefined();
    db.transaction(() => { stats.update(ctx, "k", (s) => s.add(1)); })();
    expect(() => db.transaction(() => { stats.update(ctx, "k", (s) => s.add(50)); throw boom; })()).toThrow(boom);
    expect(stats.get(ctx, "k")!.count).toBe(1);
    db.transaction(() => {
      stats.update(ctx, "k", (s) => s.add(2));
      expect(() => db.transaction(() => { stats.update(ctx, "k", (s) => s.add(60)); throw boom; })()).toThrow(boom);
      expect(stats.get(ctx, "k")!.sum).toBe(3);
    })();
    expect(stats.get(ctx, "k")!.toJSON()).toMatchObject({ count: 2, sum: 3 });
  });

  it("a synopsis changed outside `update` is read again from the database", () => {
    const db = openDb();
    const ctx = { db };
    const stats = runningStatsStore("s");
    stats.update(ctx, "k", (s) => s.add(1));
    stats.get(ctx, "k")!.add(1000); // misuse: mutating a read-only copy
    expect(stats.update(ctx, "k", (s) => s.add(2).sum)).toBe(3);
  });

  it("a small cache still gives the same results and bounds its TEMP bookkeeping", () => {
    const db = openDb();
    const ctx = { db };
    const small = new SynopsisStore({ name: "h", cacheSize: 2, create: () => new RunningStats(), deserialize: (b) => RunningStats.deserialize(b) });
    const big = new SynopsisStore({ name: "h2", cacheSize: 100, create: () => new RunningStats(), deserialize: (b) => RunningStats.deserialize(b) });
    for (let i = 0; i < 500; i++) {
      small.update(ctx, `k${i % 17}`, (s) => s.add(i));
      big.update(ctx, `k${i % 17}`, (s) => s.add(i));
    }
    for (let k = 0; k < 17; k++) expect(stored(db, "synopsis:h", `k${k}`)).toEqual(stored(db, "synopsis:h2", `k${k}`));
    expect(db.prepare("SELECT count(*) FROM temp.kappa_synopsis_cache WHERE name = 'synopsis:h'").pluck().get()).toBe(2);
  });

  it("paged synopses (Count-Min, HyperLogLog) rewrite only changed pages, and the pages always equal serialize()", () => {
    const db = openDb();
    const ctx = { db };
    const cms = countMinStore("top", { epsilon: 0.01, delta: 0.05, topK: 5 });
    const hll = hyperLogLogStore("users", { p: 12 });
    const rnd = seededRandom("paged");
    for (let batch = 0; batch < 30; batch++) {
      const rollback = batch % 7 === 3;
      try {
        db.transaction(() => {
          for (let i = 0; i < 50; i++) {
            const item = `i${Math.floor(200 * rnd() ** 2)}`;
            cms.update(ctx, `k${batch % 3}`, (s) => s.add(item, 1 + (i % 3)));
            hll.update(ctx, "all", (h) => h.add(item));
          }
          if (rollback) throw new Error("rollback");
        })();
      } catch { /* rolled back on purpose */ }
      for (const k of ["k0", "k1", "k2"]) {
        const s = cms.get(ctx, k);
        if (s) expect(stored(db, "synopsis:top", k)).toEqual(Buffer.from(s.serialize()));
      }
      expect(stored(db, "synopsis:users", "all")).toEqual(Buffer.from(hll.get(ctx, "all")!.serialize()));
    }
    const fresh = countMinStore("top", { epsilon: 0.01, delta: 0.05, topK: 5 }); // no cache: reads the pages back
    expect(fresh.get(ctx, "k1")!.topK()).toEqual(cms.get(ctx, "k1")!.topK());
  });

  it("a restart from the view file continues exactly like an uninterrupted run", () => {
    const stream = Array.from({ length: 4000 }, (_, i) => ({ user: `u${(i * 7919) % 613}`, session: `s${i}` }));
    const apply = (db: Database.Database, from: number, to: number) => {
      const sample = reservoirStore<string>("sessions", { k: 25 });
      const users = hyperLogLogStore("users", { p: 10 });
      const ctx = { db, processor: "pageviews" };
      db.transaction(() => {
        for (const e of stream.slice(from, to)) {
          sample.update(ctx, "all", (r) => r.add(e.session));
          users.update(ctx, "all", (h) => h.add(e.user));
        }
      })();
    };
    const once = openDb(join(dir, "once.sqlite"));
    apply(once, 0, stream.length);
    const path = join(dir, "twice.sqlite");
    let db = openDb(path);
    apply(db, 0, 1234);
    db.close();
    db = openDb(path);
    apply(db, 1234, stream.length);
    const dump = (d: Database.Database) => d.prepare("SELECT name, key, hex(value) AS v FROM kappa_state ORDER BY name, key").all();
    expect(dump(db)).toEqual(dump(once));
    expect(dump(db).length).toBeGreaterThan(2); // the sample and the sketch, in pages
    db.close();
    once.close();
  });
});
