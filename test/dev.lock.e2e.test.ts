import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kappa } from "./support/cli.js";
import { DevProcess } from "./support/dev.js";

describe("a second kappa dev on a data dir in use", () => {
  it("starts nothing: no second nats-server on the store, nats.url untouched, the first session keeps working", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-"));
    const dataDir = join(dir, ".kappa");
    try {
      await using dev = await DevProcess.start(dataDir);
      const url = readFileSync(join(dataDir, "nats.url"), "utf8");
      const storeBefore = readdirSync(join(dataDir, "nats")).sort();

      const second = kappa(["--data-dir", dataDir, "dev", "--port", "0"]);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toMatch(/another worker \(pid \d+\) is using this data directory/);
      expect(second.stderr).not.toMatch(/NATS|nats-server/i); // it got no further than the lock

      expect(readFileSync(join(dataDir, "nats.url"), "utf8")).toBe(url);
      expect(readdirSync(join(dataDir, "nats")).sort()).toEqual(storeBefore);
      // A later command of the first session finds its server without --nats.
      const a = kappa(["--data-dir", dataDir, "--json", "append", "order.placed", '{"user":"u1","amount":1}']);
      expect(a.code, a.stderr).toBe(0);
      expect(JSON.parse(a.stdout)).toMatchObject({ seq: 1 });
      expect(dev.child.exitCode).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
