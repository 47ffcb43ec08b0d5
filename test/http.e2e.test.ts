import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { kappa } from "./support/cli.js";
import { DevProcess } from "./support/dev.js";
import { ServeProcess } from "./support/serve.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

describe("kappa dev and kappa serve, as a user runs them", () => {
  it("dev serves HTTP; serve in another process answers appends at once with minSeq, and stops cleanly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-http-e2e-"));
    const dataDir = join(dir, ".kappa");
    try {
      await using dev = await DevProcess.start(dataDir);
      expect(dev.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(kappa(["--data-dir", dataDir, "deploy", V1, "--wait"]).code).toBe(0);
      // Stopped by its PID on the way out, also when an expectation fails.
      await using serve = await ServeProcess.start(["--data-dir", dataDir]);
      for (const url of [dev.http!, serve.url]) {
        const h = (await (await fetch(`${url}/healthz`)).json()) as { status: string };
        expect(h.status).toBe("ok");
      }
      for (let i = 0; i < 2; i++) {
        const a = kappa(["--data-dir", dataDir, "--json", "append", "order.placed", JSON.stringify({ order: `e${i}`, user: `e2e_${i}`, product: "p", amount: 5, quantity: 1 })]);
        expect(a.code).toBe(0);
        const seq = (JSON.parse(a.stdout) as { seq: number }).seq;
        const res = await fetch(`${serve.url}/views/orders_by_user/query`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ sql: "SELECT user_id, orders FROM totals WHERE user_id = :u", params: { u: `e2e_${i}` }, minSeq: seq }),
        });
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ version: 1, seq, rows: [{ user_id: `e2e_${i}`, orders: 1 }] });
      }
      expect(await serve.stop()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
