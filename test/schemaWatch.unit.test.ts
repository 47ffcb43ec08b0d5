import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchApplier, type ProcessorDefinition } from "../src/processors/index.js";
import { ViewWriter } from "../src/views/index.js";
import type { RawEvent } from "../src/log/index.js";
import { headerAt, headerName } from "../src/log/headerScan.js";

const enc = new TextEncoder();
const ev = (seq: number, data: unknown, schemaHeader?: string, type = "t.x"): RawEvent => ({ seq, type, time: "2026-01-01T00:00:00.000Z", id: `e${seq}`, data: enc.encode(JSON.stringify(data)), schemaHeader });

/** Knows t.x up to v2; throws on events marked boom (a poison under "skip", so the batch goes on). */
const def: ProcessorDefinition = {
  name: "notes",
  onError: "skip",
  subjects: ["t.*"],
  schema: ["CREATE TABLE n (seq INTEGER PRIMARY KEY)"],
  upcasters: { "t.x": [(d) => d] },
  on: {
    "t.x": (e, ctx) => {
      if ((e.data as { boom?: boolean }).boom) throw new Error("boom");
      ctx.db.prepare("INSERT INTO n VALUES (?)").run(e.seq);
    },
    "t.y": (e, ctx) => void ctx.db.prepare("INSERT INTO n VALUES (?)").run(e.seq),
  },
};

function withFile<T>(fn: (open: () => ViewWriter) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "kappa-notes-"));
  try {
    return fn(() => ViewWriter.open(join(dir, "v.sqlite"), { processor: def.name, version: 1, codeHash: "h" }, def.schema));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the build's schema check", () => {
  it("counts each event of a version the code cannot upcast once: redelivered batches, a rolled-back batch and a reopened file count nothing twice", () => {
    const events = [ev(1, {}), ev(2, {}, "3"), ev(3, {}, "2"), ev(4, { boom: true }, "3"), ev(5, {}, "3"), ev(6, {}, "x"), ev(7, {}, "9", "t.y"), ev(8, {}, "1", "t.y"), ev(9, {}, "x", "t.y"), ev(10, {}, "4", "t.z")];
    const notes = withFile((open) => {
      let w = open();
      let a = new BatchApplier(w, def, 1);
      a.apply(events.slice(0, 3));
      a.apply(events.slice(0, 5)); // 1–3 again, then 4 rolls its batch back once before it is dead-lettered
      w.close();
      w = open(); // a restart: the counts come from the file
      a = new BatchApplier(w, def, 1);
      a.apply(events);
      const n = a.schemaWatch!.notes;
      w.close();
      return n;
    });
    // Dead letters are not applied, so not counted: seq 4, and seq 6, whose unreadable header fails in
    // t.x's upcasters. t.y has none: its unreadable header (version 0) is a note. t.z has no handler.
    expect(notes.map((n) => [n.type, n.version, n.count, n.firstSeq, n.lastSeq, n.newest])).toEqual([
      ["t.x", 3, 2, 2, 5, 2],
      ["t.y", 0, 1, 9, 9, 1],
      ["t.y", 9, 1, 7, 7, 1],
    ]);
  });

  it("notes nothing with schemaCheck off", () => {
    withFile((open) => {
      const w = open();
      const a = new BatchApplier(w, def, 1, { schemaCheck: false });
      a.apply([ev(1, {}, "7")]);
      expect(a.schemaWatch).toBeUndefined();
      expect(w.db.prepare("SELECT count(*) FROM kappa_schema_versions").pluck().get()).toBe(0);
      w.close();
    });
  });

  it("finds a header in raw NATS header bytes by name, in any case, with spaces around the value; the status line is no header", () => {
    const name = headerName("Kappa-Schema-Version");
    const at = (text: string) => {
      const u8 = enc.encode(`xx${text}yy`); // inside a larger buffer, as in a packed batch
      return headerAt(u8, 2, u8.length - 2, name);
    };
    expect(at("NATS/1.0\r\nNats-Msg-Id: a\r\nKappa-Schema-Version: 3\r\n\r\n")).toBe("3");
    expect(at("NATS/1.0\r\nkappa-schema-version :  12 \r\nNats-Msg-Id: a\r\n\r\n")).toBe("12");
    expect(at("NATS/1.0\r\nNats-Msg-Id: Kappa-Schema-Version: 3\r\n\r\n")).toBeUndefined();
    expect(at("NATS/1.0\r\nKappa-Schema-Versions: 3\r\n\r\n")).toBeUndefined();
    expect(at("NATS/1.0 Kappa-Schema-Version: 3\r\n\r\n")).toBeUndefined();
    expect(at("NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n")).toBeUndefined();
  });
});
