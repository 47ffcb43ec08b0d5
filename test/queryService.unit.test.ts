import { describe, it, expect } from "vitest";
import { capped } from "../src/processors/queryService.js";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS } from "../src/views/index.js";

describe("the NATS query service keeps its ceilings", () => {
  it("clamps timeout, rows and bytes, and drops fields a query does not take (arrivedAt would move the deadline)", () => {
    const req = { sql: "SELECT 1", timeoutMs: 1e9, limit: 1e9, maxRows: 1e9, maxBytes: 1e12, arrivedAt: 1e15, path: "/etc/passwd" } as never;
    expect(capped(req)).toEqual({ sql: "SELECT 1", timeoutMs: 60_000, limit: DEFAULT_MAX_ROWS, maxRows: DEFAULT_MAX_ROWS, maxBytes: DEFAULT_MAX_BYTES });
    expect(capped({ sql: "SELECT 1", params: { a: 1 }, version: 2, minSeq: 7, timeoutMs: 250, limit: 3, maxRows: 10, maxBytes: 100 })).toEqual({ sql: "SELECT 1", params: { a: 1 }, version: 2, minSeq: 7, timeoutMs: 250, limit: 3, maxRows: 10, maxBytes: 100 });
    expect(capped({ sql: "SELECT 1", timeoutMs: -5, maxRows: 0 } as never)).toMatchObject({ timeoutMs: 5000, maxRows: DEFAULT_MAX_ROWS });
  });
});
