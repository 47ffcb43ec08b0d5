import { describe, it, expect } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readCatalogCache, updateCatalogCache } from "../src/views/catalogCache.js";
import { newProcessorRecord } from "../src/views/catalog.js";

const WRITER = resolve("test/support/cacheWriter.mjs");

function writer(path: string, name: string, count: number, startAt: number): Promise<number | null> {
  const child = spawn(process.execPath, [WRITER, path, name, String(count), String(startAt)], { stdio: ["ignore", "ignore", "inherit"] });
  return new Promise((r) => child.once("exit", (c) => r(c)));
}

describe("the local catalog copy (catalog.json)", () => {
  it("loses no update when several processes write it at the same moment (200 updates, each its own record)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-cache-"));
    const path = join(dir, "catalog.json");
    try {
      const names = ["a", "b", "c", "d", "e"];
      const startAt = Date.now() + 2500;
      const codes = await Promise.all(names.map((n) => writer(path, n, 40, startAt)));
      expect(codes).toEqual(names.map(() => 0));
      // Every one of the 200 updates survived: each wrote a record of its own.
      const all = names.flatMap((n) => Array.from({ length: 40 }, (_, i) => [`${n}-${i + 1}`, i + 1] as [string, number]));
      const snap = readCatalogCache(path)!;
      const byName = (a: [string, number], b: [string, number]) => a[0].localeCompare(b[0]);
      expect(snap.records.map((r): [string, number] => [r.name, r.live!]).sort(byName)).toEqual([...all].sort(byName));
      expect(snap.revisions).toEqual(Object.fromEntries(all));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("never replaces a record with an older revision of it (a watch lagging behind a CLI command)", () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-cache-"));
    const path = join(dir, "catalog.json");
    try {
      updateCatalogCache(path, { ...newProcessorRecord("p"), live: 2 }, 12);
      updateCatalogCache(path, { ...newProcessorRecord("p"), live: 1 }, 11);
      expect(readCatalogCache(path)!.records[0]!.live).toBe(2);
      updateCatalogCache(path, { ...newProcessorRecord("p"), live: 3 }, 13);
      expect(readCatalogCache(path)!.records[0]!.live).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
