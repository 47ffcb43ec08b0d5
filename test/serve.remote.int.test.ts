import { describe, it, expect } from "vitest";
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { referenceTotals } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { DataDir, readCheckpoint } from "../src/views/index.js";
import { startHttpServer } from "../src/cli/http/index.js";

describe("kappa serve --remote", () => {
  it("answers HTTP queries from a worker over NATS, with a data dir that holds no view at all", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(2000, 801);
    const wdir = new DataDir(join(env.dir, "worker"));
    await env.startWorker(wdir, undefined, { workerId: "w1" });
    await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await waitFor(() => readCheckpoint(wdir.viewFile("orders_by_user", 1)) === 2000, 20_000, "worker at the head");
    const ctx = cliContext(env, { dataDir: join(env.dir, "serve-only") });
    await using http = await startHttpServer(ctx, { port: 0, remote: true });
    const r = await fetch(`${http.url}/views/orders_by_user/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT user_id, orders, amount FROM totals ORDER BY user_id" }) });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { rows: unknown[]; seq: number; worker?: string };
    expect(body.rows).toEqual(referenceTotals(events, true).sort((a, b) => a.user_id.localeCompare(b.user_id)));
    expect(body.seq).toBe(2000);
    expect(existsSync(ctx.dataDir.viewsOf("orders_by_user"))).toBe(false);
    await ctx.close();
  });
});
