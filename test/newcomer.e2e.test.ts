import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { kappa } from "./support/cli.js";
import { TestEnv } from "./support/env.js";
import { deployModule } from "../src/processors/index.js";
import { devBanner } from "../src/cli/commands/run.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

/** Each message a newcomer met when following the README literally, as it reads now, with its exit code (2: change the command; 1: it failed). */
describe("a newcomer's first hour, through the binary", () => {
  it("without a server: status and query say to start kappa dev, not that nothing is deployed; a missing --file is named", () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-newcomer-"));
    try {
      const k = (...args: string[]) => kappa(["--nats", "nats://127.0.0.1:1", "--data-dir", join(dir, ".kappa"), ...args]);
      for (const r of [k("status"), k("query", "orders_by_user", "SELECT 1")]) {
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/^kappa: NATS is not reachable at nats:\/\/127\.0\.0\.1:1 \(.*\), and .* has no copy of the catalog\n {2}hint: start `npx kappa dev` in another terminal/);
        expect(r.stderr).not.toMatch(/not deployed|deploy it/);
        expect(r.stderr.match(/cannot reach NATS/g) ?? []).toHaveLength(0); // said once, not twice
      }
      const missing = k("append", "--file", "nope.ndjson");
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^kappa: --file nope\.ndjson: no such file\n {2}hint: check the path \(relative to .*\); e\.g\. `npx tsx examples\/orders\/generate\.ts 1000 > orders\.ndjson` makes one\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with a server: did-you-mean, the missing parameter, promote of a failed version, rollback with nothing earlier, log tail --from end and --last", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(60, 9);
    await env.startWorker();
    const dir = mkdtempSync(join(tmpdir(), "kappa-newcomer-"));
    try {
      const fragile = join(dir, "fragile.ts");
      writeFileSync(fragile, 'export default { name: "fragile", schema: [], on: { "order.refunded": () => { throw new Error("no refunds"); }, "order.placed": () => {} } };\n');
      const noDefault = join(dir, "nodefault.ts");
      writeFileSync(noDefault, "export const x = 1;\n");
      await deployModule(env.nc, env.spec, V1);
      await deployModule(env.nc, env.spec, fragile);
      await env.waitForRecord("orders_by_user", (r) => r.live === 1);
      const failed = await env.waitForRecord("fragile", (r) => r.versions["1"]?.state === "failed");
      const k = (...args: string[]) => kappa(["--nats", env.server.url, "--data-dir", env.dataDir.root, ...args]);

      const typo = k("status", "orders_by_usr");
      expect(typo.code).toBe(2);
      expect(typo.stderr).toMatch(/^kappa: processor orders_by_usr is not deployed — did you mean orders_by_user\?\n {2}hint: deployed: fragile, orders_by_user\n$/);

      const param = k("query", "orders_by_user", "top_users");
      expect(param.code).toBe(2);
      expect(param.stderr).toMatch(/^kappa: the query needs the parameter n\n {2}hint: pass `--param n=<value>`/);

      const promote = k("promote", "fragile", "1");
      expect(promote.code).toBe(2);
      const at = failed.versions["1"]!.error!.seq;
      expect(promote.stderr).toMatch(new RegExp(`^kappa: fragile v1 failed at event ${at} \\(order\\.refunded\\): fragile threw: no refunds\\n {2}hint: deploy a fix`));

      const rollback = k("rollback", "orders_by_user");
      expect(rollback.code).toBe(2);
      expect(rollback.stderr).toMatch(/^kappa: orders_by_user has no version to roll back to: no version that was live before v1 is still running\n {2}hint: deploy a new version/);
      expect(rollback.stderr).not.toMatch(/retired or failed/);

      const deploy = k("deploy", noDefault);
      expect(deploy.code).toBe(2);
      expect(deploy.stderr).toMatch(/^kappa: nodefault\.ts has no default export that is a processor/);

      const end = k("log", "tail", "--from", "end");
      expect(end.code).toBe(0);
      expect(end.stdout).toBe("");
      // A note in the house shape: what happened on one line, what to do on a `hint:` line.
      expect(end.stderr).toBe("note: --from end starts after the newest event (seq 60): nothing to print without --follow\n  hint: `kappa log tail --from end --follow` waits for new events; `kappa log tail --last <n>` prints the newest n\n");
      const last = k("log", "tail", "--last", "2");
      expect(last.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([59, 60]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("kappa dev says where the status page and the API are, and what to type in a second terminal", () => {
    const b = devBanner("http://127.0.0.1:7070", "./.kappa");
    expect(b).toMatch(/status page {3}http:\/\/127\.0\.0\.1:7070\//);
    expect(b).toMatch(/HTTP API {6}http:\/\/127\.0\.0\.1:7070\/views {3}\(described at http:\/\/127\.0\.0\.1:7070\/openapi\.json/);
    expect(b).toMatch(/in another terminal, from this directory: {2}npx kappa append/);
    expect(devBanner(undefined, "/tmp/d")).toMatch(/npx kappa --data-dir \/tmp\/d status/);
  });
});
