import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KappaEvent } from "../src/processors/define.js";
import { heavyHitters, quantiles, statistics } from "../src/processors/synopses/index.js";
import { countHoppingWindow, countTumblingWindow, hoppingWindow, tumblingWindow, type Window } from "../src/processors/windows/index.js";

const STATE_SQL = readFileSync(new URL("../migrations/003_state.sql", import.meta.url), "utf8");
const BASE = Date.parse("2024-03-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

function freshDb(): Database.Database {
  const db = new Database(":memory:");
  db.exec(STATE_SQL);
  return db;
}

interface Ev { seq: number; t: number; k: number; v: number }
const toEvent = (e: Ev): KappaEvent => ({ seq: e.seq, type: "m", id: `e${e.seq}`, time: iso(e.t), data: { k: e.k, v: e.v } });

/** Events at increasing times on a 5 s grid (so times often hit window bounds exactly), a few keys, small integer values. */
const eventsArb = (maxGap: number, grid = 5000) =>
  fc.array(fc.record({ dt: fc.integer({ min: 0, max: maxGap / grid }).map((n) => n * grid), k: fc.integer({ min: 0, max: 2 }), v: fc.integer({ min: -50, max: 50 }) }), { maxLength: 60 }).map((xs) => {
    let t = BASE;
    return xs.map((x, i): Ev => ((t += x.dt), { seq: i + 1, t, k: x.k, v: x.v }));
  });

const latenessArb = fc.integer({ min: 0, max: 18 }).map((n) => n * 5000);

/** Reorders events so each one arrives at most `lateness` ms after the newest time already seen. */
function shuffleWithin(events: Ev[], delays: number[], lateness: number): Ev[] {
  return events.map((e, i) => ({ e, at: e.t + Math.min(lateness, delays[i % delays.length] ?? 0) })).sort((a, b) => a.at - b.at || a.e.seq - b.e.seq).map((x) => x.e);
}

function run(w: Window, events: Ev[], db = freshDb()): Database.Database {
  const ctx = { db, processor: "test" };
  db.exec(w.schema);
  db.transaction(() => { for (const e of events) w.add(toEvent(e), ctx); })();
  return db;
}

interface Row { key: string; window_start: string | number; window_end: string | number; count: number; sum: number | null; min: number | null; max: number | null; mean: number | null; final: number }
const rows = (db: Database.Database, table: string): Row[] =>
  db.prepare(`SELECT key, window_start, window_end, count, sum, min, max, mean, final FROM ${table} ORDER BY key, window_start`).all() as Row[];
const lateRows = (db: Database.Database) =>
  db.prepare("SELECT seq, key, window_start, window_end FROM kappa_late_events ORDER BY seq, window_start").all();

/** Brute force for fixed windows of event time: replays arrival order with the watermark rule, groups by key and window. */
function bruteForceFixed(events: Ev[], size: number, advance: number, lateness: number) {
  const groups = new Map<string, { key: string; s: number; vs: number[] }>();
  const late: { seq: number; key: string; window_start: string; window_end: string }[] = [];
  let max = -Infinity;
  for (const e of events) {
    max = Math.max(max, e.t);
    for (let s = Math.floor(e.t / advance) * advance; s > e.t - size; s -= advance) {
      if (s + size <= max - lateness) { late.push({ seq: e.seq, key: String(e.k), window_start: iso(s), window_end: iso(s + size) }); continue; }
      const id = `${e.k}|${s}`;
      const g = groups.get(id) ?? { key: String(e.k), s, vs: [] };
      g.vs.push(e.v);
      groups.set(id, g);
    }
  }
  const out: Row[] = [...groups.values()].map((g) => {
    const sum = g.vs.reduce((a, b) => a + b, 0);
    return { key: g.key, window_start: iso(g.s), window_end: iso(g.s + size), count: g.vs.length, sum, min: Math.min(...g.vs), max: Math.max(...g.vs), mean: sum / g.vs.length, final: g.s + size <= max - lateness ? 1 : 0 };
  });
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : (a.window_start as string) < (b.window_start as string) ? -1 : 1));
  late.sort((a, b) => a.seq - b.seq || (a.window_start < b.window_start ? -1 : 1));
  return { rows: out, late };
}

describe("tumbling and hopping windows over event time", () => {
  const shapes = [
    { label: "tumbling 1m", size: 60_000, advance: 60_000, make: (lateness: number) => tumblingWindow({ name: "w", size: "1m", lateness, key: (e) => e.data.k, value: (e) => e.data.v }) },
    { label: "hopping 1m every 20s", size: 60_000, advance: 20_000, make: (lateness: number) => hoppingWindow({ name: "w", size: "1m", advance: "20s", lateness, key: (e) => e.data.k, value: (e) => e.data.v }) },
  ];
  for (const shape of shapes) {
    it(`${shape.label}: in order, results equal brute force`, () => {
      fc.assert(fc.property(eventsArb(30_000), latenessArb, (events, lateness) => {
        const db = run(shape.make(lateness), events);
        const want = bruteForceFixed(events, shape.size, shape.advance, lateness);
        expect(rows(db, "w")).toEqual(want.rows);
        expect(lateRows(db)).toEqual([]);
      }), { numRuns: 80 });
    });

    it(`${shape.label}: shuffled within the lateness, results equal the in-order run`, () => {
      fc.assert(fc.property(eventsArb(30_000), latenessArb, fc.array(fc.nat(), { minLength: 1 }), (events, lateness, delays) => {
        const shuffled = shuffleWithin(events, delays.map((d) => d % (lateness + 1)), lateness);
        const db = run(shape.make(lateness), shuffled);
        const want = bruteForceFixed(events, shape.size, shape.advance, lateness);
        expect(rows(db, "w")).toEqual(want.rows);
        expect(lateRows(db)).toEqual([]);
      }), { numRuns: 80 });
    });

    it(`${shape.label}: in any order, late events land in kappa_late_events and nothing is lost`, () => {
      fc.assert(fc.property(eventsArb(30_000).chain((es) => fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length })), latenessArb, (shuffled, lateness) => {
        const db = run(shape.make(lateness), shuffled);
        const want = bruteForceFixed(shuffled, shape.size, shape.advance, lateness);
        expect(rows(db, "w")).toEqual(want.rows);
        expect(lateRows(db)).toEqual(want.late);
        const counted = (db.prepare("SELECT coalesce(sum(count), 0) FROM w").pluck().get() as number) + want.late.length;
        expect(counted).toBe(shuffled.length * (shape.size / shape.advance));
      }), { numRuns: 80 });
    });
  }

  it("reads time from a data field (ISO or epoch ms) and aggregates with a reducer", () => {
    const w = tumblingWindow({ name: "w", size: 1000, timeField: "ts", initial: [] as number[], reduce: (acc: number[], v: number) => [...acc, v], value: (e) => e.data.v });
    const db = freshDb();
    const ctx = { db };
    w.add({ seq: 1, type: "m", id: "1", time: iso(0), data: { ts: BASE + 10, v: 1 } }, ctx);
    w.add({ seq: 2, type: "m", id: "2", time: iso(0), data: { ts: iso(BASE + 999), v: 2 } }, ctx);
    w.add({ seq: 3, type: "m", id: "3", time: iso(0), data: { ts: iso(BASE + 1000), v: 3 } }, ctx);
    const got = db.prepare("SELECT window_start, count, value, final FROM w ORDER BY window_start").all();
    expect(got).toEqual([
      { window_start: iso(BASE), count: 2, value: "[1,2]", final: 1 },
      { window_start: iso(BASE + 1000), count: 1, value: "[3]", final: 0 },
    ]);
    expect(w.watermark(ctx)).toEqual({ maxEventTime: iso(BASE + 1000), watermark: iso(BASE + 1000) });
  });

  it("keeps a synopsis per window: quantiles, heavy hitters, statistics", () => {
    const q = tumblingWindow({ name: "q", size: "1m", value: (e) => e.data.v, synopsis: quantiles({ probabilities: [0.5, 0.9] }) });
    const hh = tumblingWindow({ name: "hh", size: "1m", value: (e) => `k${e.data.k}`, synopsis: heavyHitters({ epsilon: 0.01, delta: 0.01, topK: 2 }) });
    const st = tumblingWindow({ name: "st", size: "1m", value: (e) => e.data.v, synopsis: statistics() });
    const events = Array.from({ length: 100 }, (_, i) => ({ seq: i + 1, t: BASE + i * 100, k: i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2, v: i + 1 }));
    const db = run(q, events);
    run(hh, events, db);
    run(st, events, db);
    const value = (table: string) => JSON.parse(db.prepare(`SELECT value FROM ${table}`).pluck().get() as string);
    expect(value("q")).toEqual({ "0.5": 50, "0.9": 90 });
    expect(value("hh")).toEqual([{ item: "k0", count: 60 }, { item: "k1", count: 30 }]);
    expect(value("st")).toMatchObject({ count: 100, sum: 5050, min: 1, max: 100, mean: 50.5 });
  });

  it("retain keeps only the newest final windows per key", () => {
    const w = tumblingWindow({ name: "w", size: "1s", retain: 3 });
    const db = run(w, Array.from({ length: 20 }, (_, i) => ({ seq: i + 1, t: BASE + i * 1000, k: 0, v: 0 })));
    expect(db.prepare("SELECT window_start, final FROM w ORDER BY window_start").all()).toEqual([
      { window_start: iso(BASE + 16_000), final: 1 },
      { window_start: iso(BASE + 17_000), final: 1 },
      { window_start: iso(BASE + 18_000), final: 1 },
      { window_start: iso(BASE + 19_000), final: 0 },
    ]);
  });
});

describe("count windows", () => {
  function bruteForceCount(events: Ev[], size: number, advance: number): Row[] {
    const byKey = new Map<number, number[]>();
    for (const e of events) byKey.set(e.k, [...(byKey.get(e.k) ?? []), e.v]);
    const out: Row[] = [];
    for (const k of [...byKey.keys()].sort()) {
      const vs = byKey.get(k)!;
      for (let s = 0; s < vs.length; s += advance) {
        const w = vs.slice(s, s + size);
        const sum = w.reduce((a, b) => a + b, 0);
        out.push({ key: String(k), window_start: s, window_end: s + size, count: w.length, sum, min: Math.min(...w), max: Math.max(...w), mean: sum / w.length, final: vs.length >= s + size ? 1 : 0 });
      }
    }
    return out;
  }

  it("tumbling and hopping by event count equal brute force", () => {
    fc.assert(fc.property(eventsArb(1000, 1), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), (events, a, b) => {
      const [advance, size] = [Math.min(a, b), Math.max(a, b)];
      const hop = countHoppingWindow({ name: "h", size, advance, key: (e) => e.data.k, value: (e) => e.data.v });
      const tumble = countTumblingWindow({ name: "t", size, key: (e) => e.data.k, value: (e) => e.data.v });
      const db = run(hop, events);
      run(tumble, events, db);
      expect(rows(db, "h")).toEqual(bruteForceCount(events, size, advance));
      expect(rows(db, "t")).toEqual(bruteForceCount(events, size, size));
    }), { numRuns: 80 });
  });
});
