import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kappa } from "./support/cli.js";
import { DevProcess } from "./support/dev.js";
import { versionedOrders } from "../examples/schemas/generate.js";

describe("the kappa binary: schema versions and time travel", () => {
  it("appends three schema versions, lists them, warns at deploy, freezes a version, and answers --as-of", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-tt-"));
    const dataDir = join(dir, ".kappa");
    const k = (...args: string[]) => kappa(["--data-dir", dataDir, ...args]);
    try {
      await using _dev = await DevProcess.start(dataDir);
      const file = join(dir, "mixed.ndjson");
      writeFileSync(file, [...versionedOrders(600, 61, "mixed")].map((e) => JSON.stringify(e)).join("\n"));
      expect(k("append", "--file", file).code).toBe(0);
      const one = k("--json", "append", "order.placed", '{"order":"z","customer":{"id":"u1"},"product":"p","amount_cents":5,"quantity":1}', "--schema-version", "3");
      expect(JSON.parse(one.stdout)).toEqual({ seq: 601, duplicate: false });

      const types = JSON.parse(k("--json", "log", "types").stdout) as { type: string; version: number; lastSeq: number }[];
      const placed = types.filter((t) => t.type === "order.placed");
      expect(placed.map((t) => t.version)).toEqual([1, 2, 3]);
      expect(placed[2]!.lastSeq).toBe(601);

      // the build notes schema versions as it reads (no second read at deploy): --wait prints the first unknown
      // version as a warning, and the event whose shape the code cannot take fails the build naming the missing upcaster
      const plain = k("deploy", "examples/orders/orders_by_user_v2.ts", "--wait");
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/warning: the log holds schema version 2 of order\.placed .* orders_by_user has no upcaster/);
      expect(plain.stderr).toMatch(/failed at event 3 .* schema version 3 of order\.placed, which orders_by_user has no upcaster for/);
      expect(k("status", "orders_by_user").stdout).toMatch(/failed/);
      const up = k("deploy", "examples/schemas/orders_by_customer.ts", "--wait");
      expect(up.code).toBe(0);
      expect(up.stderr).not.toMatch(/warning/);

      const frozen = k("replay", "orders_by_customer", "--from", "start", "--until", "300", "--wait");
      expect(frozen.stdout).toMatch(/v2 frozen at 300/);
      expect(k("status", "orders_by_customer").stdout).toMatch(/frozen at 300/);
      const refused = k("promote", "orders_by_customer", "2");
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/frozen at seq 300/);

      const sql = "SELECT sum(orders) AS n FROM customers";
      const first = JSON.parse(k("--json", "query", "orders_by_customer", sql, "--as-of", "450").stdout);
      const again = JSON.parse(k("--json", "query", "orders_by_customer", sql, "--as-of", "450", "--no-build").stdout);
      expect([first.version, first.seq, first.built]).toEqual([3, 450, true]);
      expect([again.version, again.seq, again.built]).toEqual([3, 450, false]);
      expect(again.rows).toEqual(first.rows);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // eleven binary runs: seconds each on a loaded 2-core machine
});
