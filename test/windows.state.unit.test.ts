import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { KappaEvent } from "../src/processors/define.js";
import { distinctCount } from "../src/processors/synopses/index.js";
import {
  countSlidingWindow, EventTimeError, hoppingWindow, parseDuration, sessionWindow, slidingWindow, tumblingWindow,
  WindowConfigError, WindowValueError, type Window,
} from "../src/processors/windows/index.js";

const STATE_SQL = readFileSync(new URL("../migrations/003_state.sql", import.meta.url), "utf8");
const BASE = Date.parse("2024-03-01T00:00:00.000Z");
const dir = mkdtempSync(join(tmpdir(), "kappa-windows-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openDb(path = ":memory:"): Database.Database {
  const db = new Database(path);
  if (!db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'kappa_state'").get()) db.exec(STATE_SQL);
  return db;
}

/** Page views every 250 ms of event time: 40 pages, 3000 users, a little disorder. */
function event(i: number): KappaEvent {
  const jitter = (i * 7919) % 6000;
  return { seq: i + 1, type: "page.view", id: `v${i}`, time: new Date(BASE + i * 250 - jitter).toISOString(), data: { page: `p${(i * 31) % 40}`, user: `u${(i * 104729) % 3000}`, ms: (i * 37) % 500 } };
}

function feed(db: Database.Database, windows: Window[], from: number, to: number, checkpoints: number[] = []): number[] {
  const ctx = { db, processor: "views" };
  const sizes: number[] = [];
  for (let b = from; b < to; b += 5000) {
    db.transaction(() => { for (let i = b; i < Math.min(to, b + 5000); i++) for (const w of windows) w.add(event(i), ctx); })();
    if (checkpoints.includes(Math.min(to, b + 5000))) sizes.push(db.prepare("SELECT count(*) FROM kappa_state").pluck().get() as number);
  }
  return sizes;
}

describe("window state stays bounded", () => {
  it("100k events over thousands of windows: kappa_state holds only open windows", () => {
    const db = openDb();
    const windows = [
      tumblingWindow({ name: "per_minute", size: "1m", lateness: "5s", key: (e) => e.data.page, value: (e) => e.data.ms }),
      countSlidingWindow({ name: "last_100", size: 100, key: (e) => e.data.page, value: (e) => e.data.ms }),
    ];
    const sizes = feed(db, windows, 0, 100_000, [10_000, 50_000, 100_000]);
    // Per page: ≤ 2 open minutes (lateness 5 s), one ring, one counter and one open count window; plus the watermark.
    for (const n of sizes) expect(n).toBeLessThanOrEqual(40 * 3 + 1);
    expect(sizes[2]).toBeLessThanOrEqual(sizes[0]! + 40);
    // 100k events × 250 ms ≈ 416 minutes of event time, for each of 40 pages.
    expect(db.prepare("SELECT count(*) FROM per_minute WHERE final = 1").pluck().get()).toBeGreaterThan(410 * 40);
  });

  it("sessions, time-sliding and hopping distinct counts keep bounded state too", () => {
    const db = openDb();
    const windows = [
      sessionWindow({ name: "sessions", gap: "2m", lateness: "5s", key: (e) => e.data.user }),
      slidingWindow({ name: "last_30s", size: "30s", key: (e) => e.data.page, value: (e) => e.data.ms }),
      hoppingWindow({ name: "users_5m", size: "5m", advance: "1m", lateness: "5s", value: (e) => e.data.user, synopsis: distinctCount({ p: 10 }) }),
    ];
    const sizes = feed(db, windows, 0, 12_000, [4_000, 8_000, 12_000]);
    expect(Math.max(...sizes)).toBeLessThan(sizes[0]! * 1.2);
    expect(db.prepare("SELECT count(*) FROM kappa_late_events").pluck().get()).toBeGreaterThan(0);
  });
});

describe("restarts and rollbacks", () => {
  const make = (): Window[] => [
    tumblingWindow({ name: "per_minute", size: "1m", lateness: "2s", key: (e) => e.data.page, value: (e) => e.data.ms, initial: 0, reduce: (a: number, v: number) => a + v * v }),
    hoppingWindow({ name: "users_5m", size: "5m", advance: "1m", lateness: "2s", value: (e) => e.data.user, synopsis: distinctCount({ p: 10 }) }),
    sessionWindow({ name: "sessions", gap: "90s", lateness: "2s", key: (e) => e.data.user, value: (e) => e.data.ms }),
    slidingWindow({ name: "last_30s", size: "30s", key: (e) => e.data.page, value: (e) => e.data.ms }),
  ];
  const dump = (db: Database.Database) =>
    ["per_minute", "users_5m", "sessions", "last_30s", "kappa_late_events"].map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2, 3`).all())
      .concat([db.prepare("SELECT name, key, hex(value) FROM kappa_state ORDER BY name, key").all()]);

  it("stopping mid-stream and resuming from the view file gives the same bytes as one run", () => {
    const once = openDb();
    feed(once, make(), 0, 4_000);
    const path = join(dir, "resume.sqlite");
    let db = openDb(path);
    feed(db, make(), 0, 3_300);
    db.close();
    db = openDb(path);
    feed(db, make(), 3_300, 4_000);
    expect(dump(db)).toEqual(dump(once));
    db.close();
  });

  it("a rolled-back batch (even the one that created the results table) leaves no trace", () => {
    const clean = openDb();
    feed(clean, make(), 0, 2_000);
    const db = openDb();
    const windows = make();
    const ctx = { db, processor: "views" };
    expect(() => db.transaction(() => { for (let i = 0; i < 100; i++) windows.forEach((w) => w.add(event(i), ctx)); throw new Error("crash"); })()).toThrow("crash");
    expect(db.prepare("SELECT count(*) FROM kappa_state").pluck().get()).toBe(0);
    feed(db, windows, 0, 1_200);
    expect(() => db.transaction(() => { for (let i = 1_200; i < 1_500; i++) windows.forEach((w) => w.add(event(i), ctx)); throw new Error("crash"); })()).toThrow("crash");
    feed(db, windows, 1_200, 2_000);
    expect(dump(db)).toEqual(dump(clean));
  });
});

describe("bad input and bad options", () => {
  const db = openDb();
  const ctx = { db };

  it("names the event and the field when an event has no usable time or value", () => {
    const w = tumblingWindow({ name: "w", size: "1m", timeField: "ts", value: (e) => e.data.v });
    const ev = (data: unknown): KappaEvent => ({ seq: 42, type: "t", id: "x", time: new Date(BASE).toISOString(), data });
    expect(() => w.add(ev({ v: 1 }), ctx)).toThrow(EventTimeError);
    expect(() => w.add(ev({ ts: "yesterday", v: 1 }), ctx)).toThrow(/event 42 has data.ts = "yesterday"/);
    expect(() => w.add(ev({ ts: BASE, v: Number.NaN }), ctx)).toThrow(WindowValueError);
    try { w.add(ev({ v: 1 }), ctx); } catch (err) { expect((err as EventTimeError).code).toBe("BAD_EVENT_TIME"); }
  });

  it("refuses options it cannot honour when the processor module loads", () => {
    expect(() => tumblingWindow({ name: "w", size: "1 minute" })).toThrow(WindowConfigError);
    expect(() => tumblingWindow({ name: "w", size: "1m", table: "kappa_state" })).toThrow(/not a usable table name/);
    expect(() => tumblingWindow({ name: "bad name", size: "1m" })).toThrow(WindowConfigError);
    expect(() => hoppingWindow({ name: "w", size: "1m", advance: "2m" })).toThrow(/advance/);
    expect(() => tumblingWindow({ name: "w", size: "1m", lateness: -5 })).toThrow(WindowConfigError);
    expect(() => tumblingWindow({ name: "w", size: "1m", reduce: (a: number) => a })).toThrow(/initial/);
    expect(() => countSlidingWindow({ name: "w", size: 0 })).toThrow(WindowConfigError);
  });

  it("parses durations as ms or text", () => {
    expect(parseDuration(1500, "w", "size")).toBe(1500);
    expect(parseDuration("250ms", "w", "size")).toBe(250);
    expect(parseDuration("1h30m", "w", "size")).toBe(5_400_000);
    expect(parseDuration("1.5s", "w", "size")).toBe(1500);
    expect(parseDuration("2d", "w", "size")).toBe(172_800_000);
    expect(parseDuration(0, "w", "lateness", 0)).toBe(0);
  });
});
