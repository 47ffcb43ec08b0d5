import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchApplier, type ProcessorDefinition } from "../src/processors/index.js";
import { ViewWriter, digestDb } from "../src/views/index.js";
import type { RawEvent } from "../src/log/index.js";

const enc = new TextEncoder();
const ev = (seq: number, data: unknown, type = "t.x"): RawEvent => ({ seq, type, time: "2026-01-01T00:00:00.000Z", id: `e${seq}`, data: enc.encode(JSON.stringify(data)) });

/** A processor that draws random numbers, and throws on events marked `boom`. */
const drawing: ProcessorDefinition = {
  name: "draws",
  onError: "skip",
  schema: ["CREATE TABLE draws (seq INTEGER PRIMARY KEY, r REAL NOT NULL)"],
  apply(e, ctx) {
    if (e.data.boom) throw new Error("boom"); // before drawing: the previous event's generator must not carry over
    const r = ctx.random() + ctx.random();
    ctx.db.prepare("INSERT INTO draws (seq, r) VALUES (?, ?)").run(e.seq, r);
  },
};

function build(batches: RawEvent[][], def = drawing): string {
  const dir = mkdtempSync(join(tmpdir(), "kappa-apply-"));
  const w = ViewWriter.open(join(dir, "v.sqlite"), { processor: def.name, version: 1, codeHash: "h" }, def.schema);
  try {
    const a = new BatchApplier(w, def, 1);
    for (const b of batches) expect(a.apply(b)).toBeNull();
    const d = digestDb(w.db);
    return `${d.digest} ${d.platform.digest}`; // rows, and beside them the dead letters
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the batch applier", () => {
  it("gives the same bytes whatever the batch boundaries, even when a poison event rolls a batch back", () => {
    const events = [ev(1, {}), ev(2, { boom: true }), ev(3, {}), ev(4, {}), ev(5, { boom: true }), ev(6, {})];
    const whole = build([events]);
    expect(build(events.map((e) => [e]))).toBe(whole);
    expect(build([events.slice(0, 3), events.slice(3)])).toBe(whole);
  });

  it("skips events at or below the checkpoint (redelivery)", () => {
    const events = [ev(1, {}), ev(2, {}), ev(3, {})];
    expect(build([events.slice(0, 2), events, events])).toBe(build([events]));
  });

  it("applies a redelivered event once: a processor that counts, with no key to collide and onError halt, shows any double apply", () => {
    const counting: ProcessorDefinition = {
      name: "counts",
      schema: ["CREATE TABLE counts (k TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT NULL)"],
      apply(e, ctx) {
        ctx.db.prepare("INSERT INTO counts (k, n, total) VALUES ('all', 1, ?) ON CONFLICT (k) DO UPDATE SET n = n + 1, total = total + excluded.total").run(e.data.v);
      },
    };
    const events = [ev(1, { v: 1 }), ev(2, { v: 10 }), ev(3, { v: 100 })];
    const once = build([events], counting);
    // A consumer reset hands over what was applied again: alone, as a prefix, and overlapping.
    expect(build([events.slice(0, 2), events, events, [events[1]!], events.slice(1)], counting)).toBe(once);
    const dir = mkdtempSync(join(tmpdir(), "kappa-apply-"));
    const w = ViewWriter.open(join(dir, "v.sqlite"), { processor: "counts", version: 1, codeHash: "h" }, counting.schema);
    try {
      const a = new BatchApplier(w, counting, 1);
      for (const b of [events.slice(0, 2), events, events]) expect(a.apply(b)).toBeNull();
      expect(w.db.prepare("SELECT n, total FROM counts").get()).toEqual({ n: 3, total: 111 });
    } finally {
      w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("resets a cached statement's modes, so handlers sharing SQL do not see each other's .pluck()", () => {
    const def: ProcessorDefinition = {
      name: "modes",
      schema: ["CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)", "INSERT INTO t VALUES ('a', 1)"],
      apply(e, ctx) {
        const plucked = ctx.db.prepare("SELECT k, v FROM t WHERE k = 'a'").pluck().get();
        const row = ctx.db.prepare("SELECT k, v FROM t WHERE k = 'a'").get() as { k: string; v: number };
        ctx.db.prepare("INSERT INTO t VALUES (?, ?)").run(`${plucked}-${row.v}-${e.seq}`, e.seq);
      },
    };
    const dir = mkdtempSync(join(tmpdir(), "kappa-apply-"));
    const w = ViewWriter.open(join(dir, "v.sqlite"), { processor: "modes", version: 1, codeHash: "h" }, def.schema);
    try {
      expect(new BatchApplier(w, def, 1).apply([ev(1, {})])).toBeNull();
      expect(w.db.prepare("SELECT k FROM t ORDER BY k").pluck().all()).toEqual(["a", "a-1-1"]);
    } finally {
      w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
