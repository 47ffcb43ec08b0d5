import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KappaEvent } from "../src/processors/define.js";
import { distinctCount } from "../src/processors/synopses/index.js";
import { sessionWindow, WindowConfigError, type Window } from "../src/processors/windows/index.js";

const STATE_SQL = readFileSync(new URL("../migrations/003_state.sql", import.meta.url), "utf8");
const BASE = Date.parse("2024-03-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();
const GAP = 10_000;

interface Ev { seq: number; t: number; k: number; v: number }
const toEvent = (e: Ev): KappaEvent => ({ seq: e.seq, type: "m", id: `e${e.seq}`, time: iso(e.t), data: { k: e.k, v: e.v } });

const eventsArb = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 8 }).map((n) => n * 2500), k: fc.integer({ min: 0, max: 2 }), v: fc.integer({ min: -50, max: 50 }) }), { maxLength: 60 }).map((xs) => {
  let t = BASE;
  return xs.map((x, i): Ev => ((t += x.dt), { seq: i + 1, t, k: x.k, v: x.v }));
});
const latenessArb = fc.integer({ min: 0, max: 12 }).map((n) => n * 2500);

/** Sessions that record which events they hold, as [seq, time] pairs. */
const makeWindow = (lateness: number) =>
  sessionWindow({
    name: "w", gap: GAP, lateness, key: (e) => e.data.k,
    value: (e): [number, number] => [e.seq, Date.parse(e.time)],
    initial: [] as [number, number][],
    reduce: (acc: [number, number][], v: [number, number]) => [...acc, v],
    merge: (a: [number, number][], b: [number, number][]) => [...a, ...b],
  });

function run(w: Window, events: Ev[]): Database.Database {
  const db = new Database(":memory:");
  db.exec(STATE_SQL);
  db.exec(w.schema);
  const ctx = { db, processor: "test" };
  db.transaction(() => { for (const e of events) w.add(toEvent(e), ctx); })();
  return db;
}

interface Row { key: string; window_start: string; window_end: string; count: number; value: string; final: number }
const rows = (db: Database.Database) =>
  (db.prepare("SELECT key, window_start, window_end, count, value, final FROM w ORDER BY key, window_start").all() as Row[]).map((r) => ({
    ...r,
    value: (JSON.parse(r.value) as [number, number][]).map(([seq]) => seq).sort((a, b) => a - b),
  }));

/** Brute force: per key, sort by time and cut wherever two neighbours are `GAP` or more apart. */
function bruteForce(events: Ev[], lateness: number) {
  const max = Math.max(...events.map((e) => e.t));
  const out: { key: string; window_start: string; window_end: string; count: number; value: number[]; final: number }[] = [];
  for (const k of [...new Set(events.map((e) => e.k))].sort()) {
    const es = events.filter((e) => e.k === k).sort((a, b) => a.t - b.t);
    let cur: Ev[] = [];
    const flush = () => {
      const end = cur[cur.length - 1]!.t + GAP;
      out.push({ key: String(k), window_start: iso(cur[0]!.t), window_end: iso(end), count: cur.length, value: cur.map((e) => e.seq).sort((a, b) => a - b), final: end <= max - lateness ? 1 : 0 });
      cur = [];
    };
    for (const e of es) {
      if (cur.length > 0 && e.t - cur[cur.length - 1]!.t >= GAP) flush();
      cur.push(e);
    }
    flush();
  }
  return out;
}

describe("session windows", () => {
  it("in order and shuffled within the lateness, equal brute force", () => {
    fc.assert(fc.property(eventsArb, latenessArb, fc.array(fc.nat(), { minLength: 1 }), (events, lateness, delays) => {
      const shuffled = events
        .map((e, i) => ({ e, at: e.t + ((delays[i % delays.length] ?? 0) % (lateness + 1)) }))
        .sort((a, b) => a.at - b.at || a.e.seq - b.e.seq)
        .map((x) => x.e);
      for (const order of [events, shuffled]) {
        const db = run(makeWindow(lateness), order);
        expect(rows(db)).toEqual(events.length ? bruteForce(events, lateness) : []);
        expect(db.prepare("SELECT count(*) FROM kappa_late_events").pluck().get()).toBe(0);
      }
    }), { numRuns: 100 });
  });

  it("in any order, every event is in exactly one session or in kappa_late_events", () => {
    fc.assert(fc.property(eventsArb.chain((es) => fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length })), latenessArb, (events, lateness) => {
      const db = run(makeWindow(lateness), events);
      const sessions = rows(db);
      const late = db.prepare("SELECT seq FROM kappa_late_events").pluck().all() as number[];
      const seen = [...sessions.flatMap((s) => s.value), ...late].sort((a, b) => a - b);
      expect(seen).toEqual(events.map((e) => e.seq).sort((a, b) => a - b));
      const bySeq = new Map(events.map((e) => [e.seq, e]));
      for (const s of sessions) {
        const ts = s.value.map((seq) => bySeq.get(seq)!.t);
        expect(s.count).toBe(s.value.length);
        expect(s.window_start).toBe(iso(Math.min(...ts)));
        expect(s.window_end).toBe(iso(Math.max(...ts) + GAP));
      }
      for (const key of new Set(sessions.map((s) => s.key))) {
        const mine = sessions.filter((s) => s.key === key);
        for (let i = 1; i < mine.length; i++) expect(mine[i]!.window_start >= mine[i - 1]!.window_end).toBe(true);
      }
    }), { numRuns: 100 });
  });

  it("records the session an event missed, and merges two sessions an event bridges", () => {
    const w = sessionWindow({ name: "w", gap: "10s", lateness: "5s", value: (e) => e.data.v });
    const at = (seq: number, s: number) => ({ seq, t: BASE + s * 1000, k: 0, v: seq });
    // 5 is before the watermark (40 − 5): its session [1, 11) may already be final, so it is late.
    const db = run(w, [at(1, 0), at(2, 12), at(3, 7), at(4, 40), at(5, 1)]);
    expect(db.prepare("SELECT window_start, window_end, count, sum, final FROM w").all()).toEqual([
      { window_start: iso(BASE), window_end: iso(BASE + 22_000), count: 3, sum: 6, final: 1 },
      { window_start: iso(BASE + 40_000), window_end: iso(BASE + 50_000), count: 1, sum: 4, final: 0 },
    ]);
    expect(db.prepare("SELECT seq, window_start, window_end FROM kappa_late_events").all()).toEqual([
      { seq: 5, window_start: iso(BASE + 1000), window_end: iso(BASE + 11_000) },
    ]);
  });

  it("merges synopses of bridged sessions, and refuses reducers that cannot merge", () => {
    const w = sessionWindow({ name: "w", gap: "10s", lateness: "10s", value: (e) => e.data.v, synopsis: distinctCount({ p: 10 }) });
    const at = (seq: number, s: number, v: number) => ({ seq, t: BASE + s * 1000, k: 0, v });
    const db = run(w, [at(1, 0, 1), at(2, 12, 2), at(3, 6, 3), at(4, 7, 1)]);
    expect(db.prepare("SELECT count, value FROM w").all()).toEqual([{ count: 4, value: "3" }]);
    expect(() => sessionWindow({ name: "w", gap: 1, initial: 0, reduce: (a: number) => a + 1 })).toThrow(WindowConfigError);
  });
});
