import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KappaEvent } from "../src/processors/define.js";
import { countSlidingWindow, slidingWindow, type Window } from "../src/processors/windows/index.js";

const STATE_SQL = readFileSync(new URL("../migrations/003_state.sql", import.meta.url), "utf8");
const BASE = Date.parse("2024-03-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

interface Ev { seq: number; t: number; k: number; v: number }
const toEvent = (e: Ev): KappaEvent => ({ seq: e.seq, type: "m", id: `e${e.seq}`, time: iso(e.t), data: { k: e.k, v: e.v } });

const eventsArb = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 8 }).map((n) => n * 1000), k: fc.integer({ min: 0, max: 2 }), v: fc.integer({ min: -50, max: 50 }) }), { maxLength: 80 }).map((xs) => {
  let t = BASE;
  return xs.map((x, i): Ev => ((t += x.dt), { seq: i + 1, t, k: x.k, v: x.v }));
});
const anyOrderArb = eventsArb.chain((es) => fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length }));

function run(w: Window, events: Ev[]): Database.Database {
  const db = new Database(":memory:");
  db.exec(STATE_SQL);
  db.exec(w.schema);
  const ctx = { db, processor: "test" };
  db.transaction(() => { for (const e of events) w.add(toEvent(e), ctx); })();
  return db;
}

const rows = (db: Database.Database) =>
  db.prepare("SELECT key, window_start, window_end, count, sum, min, max, mean, value, final FROM w ORDER BY key").all();

function summary(key: string, start: string | number, end: string | number, vs: number[], value: string | null = null) {
  const sum = vs.reduce((a, b) => a + b, 0);
  return { key, window_start: start, window_end: end, count: vs.length, sum, min: Math.min(...vs), max: Math.max(...vs), mean: sum / vs.length, value, final: 0 };
}

describe("count-sliding windows (the last N events per key)", () => {
  it("equal brute force over the last N values of each key", () => {
    fc.assert(fc.property(anyOrderArb, fc.integer({ min: 1, max: 9 }), (events, n) => {
      const w = countSlidingWindow({ name: "w", size: n, key: (e) => e.data.k, value: (e) => e.data.v, initial: [] as number[], reduce: (acc: number[], v: number) => [...acc, v] });
      const byKey = new Map<number, number[]>();
      for (const e of events) byKey.set(e.k, [...(byKey.get(e.k) ?? []), e.v]);
      const want = [...byKey.keys()].sort().map((k) => {
        const all = byKey.get(k)!;
        const last = all.slice(-n);
        return summary(String(k), all.length - last.length, all.length, last, JSON.stringify(last));
      });
      expect(rows(run(w, events))).toEqual(want);
    }), { numRuns: 80 });
  });
});

describe("time-sliding windows (the last T of event time per key)", () => {
  /** Brute force: replays arrival order; an event at or before its key's newest time − T is late. */
  function bruteForce(events: Ev[], size: number) {
    const accepted = new Map<number, Ev[]>();
    const newest = new Map<number, number>();
    const late: number[] = [];
    for (const e of events) {
      const m = newest.get(e.k);
      if (m !== undefined && e.t <= m - size) { late.push(e.seq); continue; }
      newest.set(e.k, Math.max(m ?? -Infinity, e.t));
      accepted.set(e.k, [...(accepted.get(e.k) ?? []), e]);
    }
    const want = [...accepted.keys()].sort().map((k) => {
      const m = newest.get(k)!;
      const inside = accepted.get(k)!.filter((e) => e.t > m - size).sort((a, b) => a.t - b.t || a.seq - b.seq);
      const vs = inside.map((e) => e.v);
      return summary(String(k), iso(m - size), iso(m), vs, JSON.stringify(vs));
    });
    return { want, late: late.sort((a, b) => a - b) };
  }

  it("in any order, equal brute force; late events land in kappa_late_events", () => {
    fc.assert(fc.property(anyOrderArb, fc.integer({ min: 1, max: 6 }).map((n) => n * 5000), (events, size) => {
      const w = slidingWindow({ name: "w", size, key: (e) => e.data.k, value: (e) => e.data.v, initial: [] as number[], reduce: (acc: number[], v: number) => [...acc, v] });
      const db = run(w, events);
      const { want, late } = bruteForce(events, size);
      expect(rows(db)).toEqual(want);
      expect(db.prepare("SELECT seq FROM kappa_late_events ORDER BY seq").pluck().all()).toEqual(late);
    }), { numRuns: 80 });
  });

  it("without a reducer, running min/max/sum survive eviction", () => {
    fc.assert(fc.property(anyOrderArb, fc.integer({ min: 1, max: 6 }).map((n) => n * 5000), (events, size) => {
      const w = slidingWindow({ name: "w", size, key: (e) => e.data.k, value: (e) => e.data.v });
      const db = run(w, events);
      const { want } = bruteForce(events, size);
      expect(rows(db)).toEqual(want.map((r) => ({ ...r, value: null })));
    }), { numRuns: 80 });
  });

  it("keeps only the events inside the window in state", () => {
    const w = slidingWindow({ name: "w", size: "10s", value: (e) => e.data.v });
    const events = Array.from({ length: 1000 }, (_, i) => ({ seq: i + 1, t: BASE + i * 1000, k: 0, v: i }));
    const db = run(w, events);
    expect(db.prepare("SELECT count(*) FROM kappa_state").pluck().get()).toBe(10 + 1);
    expect(rows(db)).toEqual([summary("*", iso(BASE + 989_000), iso(BASE + 999_000), Array.from({ length: 10 }, (_, i) => 990 + i))]);
  });
});
