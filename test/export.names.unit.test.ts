import { describe, it, expect } from "vitest";
import { tableFileName } from "../src/views/export.js";

describe("export file names", () => {
  it("keep a table's file inside --out whatever the table is called", () => {
    expect(tableFileName("totals", "csv")).toBe("totals.csv");
    expect(tableFileName("../../etc/passwd", "parquet")).toBe("%2e%2e%2f%2e%2e%2fetc%2fpasswd.parquet");
    expect(tableFileName("a b", "ndjson")).not.toMatch(/[ /]/);
  });
});
