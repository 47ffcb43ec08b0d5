import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchApplier, compileUpcasters, type ProcessorDefinition } from "../src/processors/index.js";
import { ViewWriter } from "../src/views/index.js";
import { parseEventLine, type RawEvent } from "../src/log/index.js";

const enc = new TextEncoder();
const ev = (seq: number, data: unknown, schemaHeader?: string, type = "t.x"): RawEvent => ({ seq, type, time: "2026-01-01T00:00:00.000Z", id: `e${seq}`, data: enc.encode(JSON.stringify(data)), schemaHeader });

/** Stores what the handler saw: the newest shape is {n: number, tag: string}. */
const def: ProcessorDefinition = {
  name: "shapes",
  schema: ["CREATE TABLE seen (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)"],
  upcasters: { "t.x": [(d) => ({ n: Number(d.text) }), (d) => ({ ...d, tag: d.n > 1 ? "big" : "small" })] },
  apply(e, ctx) {
    ctx.db.prepare("INSERT INTO seen VALUES (?, ?)").run(e.seq, JSON.stringify(e.data));
  },
};

function seen(events: RawEvent[], d = def): { rows: string[]; poison: string | undefined } {
  const dir = mkdtempSync(join(tmpdir(), "kappa-upcast-"));
  const w = ViewWriter.open(join(dir, "v.sqlite"), { processor: d.name, version: 1, codeHash: "h" }, d.schema);
  try {
    const poison = new BatchApplier(w, d, 1).apply(events);
    return { rows: w.db.prepare("SELECT data FROM seen ORDER BY seq").pluck().all() as string[], poison: poison?.message };
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("upcasters", () => {
  it("run each event from its schema version through the rest of the chain; absent means version 1", () => {
    const r = seen([ev(1, { text: "1" }), ev(2, { n: 2 }, "2"), ev(3, { n: 3, tag: "x" }, "3"), ev(4, { text: "5" }, "1")]);
    expect(r.rows).toEqual(['{"n":1,"tag":"small"}', '{"n":2,"tag":"big"}', '{"n":3,"tag":"x"}', '{"n":5,"tag":"big"}']);
  });

  it("leave types without a chain, and versions newer than the chain, unchanged; nothing runs without upcasters", () => {
    expect(seen([ev(1, { a: 1 }, "2", "t.other"), ev(2, { z: 1 }, "7")]).rows).toEqual(['{"a":1}', '{"z":1}']);
    expect(compileUpcasters({ ...def, upcasters: undefined })).toBeNull();
  });

  it("turn a throwing upcaster or an unreadable version header into a poison event that names the step", () => {
    const broken = { ...def, upcasters: { "t.x": [() => { throw new Error("no text"); }] } };
    expect(seen([ev(1, {})], broken).poison).toMatch(/shapes threw: upcaster t\.x v1→v2 threw: no text/);
    expect(seen([ev(1, {}, "two")]).poison).toMatch(/schema version header "two" is not a positive integer/);
  });

  it("append takes a schema version from --schema-version or an envelope's schemaVersion, and refuses a bad one", () => {
    expect(parseEventLine('{"a":1}', 1, { type: "t.x", maxBytes: 1000, schemaVersion: 3 }).schemaVersion).toBe(3);
    expect(parseEventLine('{"type":"t.x","data":{},"schemaVersion":2}', 1, { maxBytes: 1000, schemaVersion: 3 }).schemaVersion).toBe(2);
    expect(parseEventLine('{"type":"t.x","data":{},"schemaVersion":1}', 1, { maxBytes: 1000 }).schemaVersion).toBeUndefined();
    expect(() => parseEventLine('{"type":"t.x","data":{},"schemaVersion":0}', 4, { maxBytes: 1000 })).toThrow(/line 4: schemaVersion 0 is not a schema version/);
  });
});
