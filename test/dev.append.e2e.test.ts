import { describe, it, expect } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kappa } from "./support/cli.js";
import { DevProcess } from "./support/dev.js";

describe("kappa dev --allow-append", () => {
  it("refuses writes without a token before starting anything, and with one takes events over HTTP as kappa serve does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-dev-append-"));
    const dataDir = join(dir, ".kappa");
    try {
      const refused = kappa(["--data-dir", dataDir, "dev", "--port", "0", "--allow-append"], { env: { KAPPA_HTTP_TOKEN: "" } });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^kappa: --allow-append needs --token, also on loopback.*\n {2}hint: pass --token <secret>/);
      // Checked first: no server was started on the data dir.
      expect(existsSync(join(dataDir, "nats.url"))).toBe(false);
      expect(kappa(["--data-dir", dataDir, "dev", "--allow-append", "--token", "t", "--no-serve"]).stderr).toMatch(/--no-serve turns off/);

      await using dev = await DevProcess.start(dataDir, ["--allow-append", "--token", "s3cret", "--id-field", "oid"]);
      const post = (body: unknown, token?: string) =>
        fetch(`${dev.http}/events`, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
      const events = [{ type: "order.placed", data: { oid: "o1", user: "ann", amount: 12 } }, { type: "order.placed", data: { oid: "o2", user: "bob", amount: 3 } }];
      expect((await post(events)).status).toBe(401);
      const first = await post(events, "s3cret");
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ count: 2, stored: 2, seqs: [1, 2] });
      // --id-field came through: a retry stores nothing twice.
      expect(await (await post(events, "s3cret")).json()).toMatchObject({ count: 2, stored: 0, duplicates: 2 });
      // The token guards the whole query server, as with `kappa serve --token`.
      expect((await fetch(`${dev.http}/views`)).status).toBe(401);
      const tail = kappa(["--data-dir", dataDir, "log", "tail"]);
      expect(tail.stdout.trim().split("\n").map((l) => { const e = JSON.parse(l) as { id: string; data: { user: string } }; return `${e.id} ${e.data.user}`; })).toEqual(["o1 ann", "o2 bob"]);
      expect(await dev.stop()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
