import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import type { NatsServer } from "../src/log/index.js";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { pidAlive } from "./support/dev.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { readCheckpoint } from "../src/views/index.js";
import { LiveCatalog } from "../src/cli/http/liveCatalog.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const NAME = "orders_by_user";

async function killServer(server: NatsServer): Promise<void> {
  await server.kill();
  expect(pidAlive(server.pid)).toBe(false);
}

describe("the catalog watch survives", () => {
  it("skips malformed catalog values with a log line, in the worker and in serve's copy, and keeps picking up deploys", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(100, 91);
    const log: string[] = [];
    await env.startWorker(env.dataDir, (l) => log.push(l));
    const served: string[] = [];
    const live = await LiveCatalog.start(cliContext(env), env.nc, (l) => served.push(l));
    try {
      const cat = await env.catalog();
      await cat.kv.put("proc.broken", "not json {");
      await cat.kv.put("proc.odd", JSON.stringify({ x: 1 }));
      await waitFor(() => log.filter((l) => /catalog entry proc\.(broken|odd) .*skipped/.test(l)).length === 2, 10_000, "both reported");
      await waitFor(() => served.filter((l) => /skipped/.test(l)).length === 2, 10_000, "both reported by serve");
      await deployModule(env.nc, env.spec, V1);
      await env.waitForRecord(NAME, (r) => r.live === 1, 20_000);
      await waitFor(() => readCheckpoint(env.dataDir.viewFile(NAME, 1)) === 100, 20_000, "v1 built");
      await waitFor(() => live.get(NAME)?.live === 1, 10_000, "serve's copy");
      expect(live.list().map((r) => r.name)).toEqual([NAME]);
      expect((await cat.list()).map((r) => r.name)).toEqual([NAME]); // status lists what it can
    } finally {
      await live.close();
    }
  });

  it("picks up a deploy after every one of several nats-server restarts under a running worker, and so does serve's copy", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(200, 92);
    const log: string[] = [];
    await env.startWorker(env.dataDir, (l) => log.push(l));
    const live = await LiveCatalog.start(cliContext(env), env.nc);
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord(NAME, (r) => r.live === 1);
    let server: NatsServer = env.server;
    const servers: NatsServer[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        await killServer(server);
        // Down long enough that the client's own consumer resets fail and give up, then back on the same store.
        await new Promise((r) => setTimeout(r, 2500));
        server = await server.restart();
        servers.push(server);
        const r = await waitFor(() => replayProcessor(env.nc, env.spec, NAME, { from: "start", codeOf: 1 }).catch(() => undefined), 30_000, `replay after restart ${round}`);
        const v = r.version.version;
        await env.waitForRecord(NAME, (rec) => rec.versions[String(v)]?.state === "caught-up", 30_000);
        expect(readCheckpoint(env.dataDir.viewFile(NAME, v))).toBe(200);
        await waitFor(() => live.get(NAME)?.versions[String(v)]?.state === "caught-up", 15_000, `serve's copy of v${v}`);
      }
    } finally {
      await live.close();
      for (const s of servers) await s.kill();
    }
  }, 120_000);

  it("watches again when the server drops the watch's consumer, and picks up the next deploy", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(100, 93);
    const log: string[] = [];
    // A watch whose consumer is gone stalls without ending: the periodic re-read (every 5 s by default) finds what it missed.
    await env.startWorker(env.dataDir, (l) => log.push(l), { resyncMs: 1000 });
    const live = await LiveCatalog.start(cliContext(env), env.nc);
    try {
      await deployModule(env.nc, env.spec, V1);
      await env.waitForRecord(NAME, (r) => r.live === 1);
      const bucket = `KV_${env.spec.stream}_catalog`;
      for (let i = 0; i < 2; i++) {
        // What a server restart on another store, or an operator, does to ephemeral consumers.
        const names: string[] = [];
        for await (const c of env.jsm.consumers.list(bucket)) names.push(c.name);
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) await env.jsm.consumers.delete(bucket, n).catch(() => false);
        const r = await replayProcessor(env.nc, env.spec, NAME, { from: "start", codeOf: 1 });
        const v = r.version.version;
        await env.waitForRecord(NAME, (rec) => rec.versions[String(v)]?.state === "caught-up", 20_000);
        await waitFor(() => live.get(NAME)?.versions[String(v)]?.state === "caught-up", 15_000, `serve's copy of v${v}`);
      }
    } finally {
      await live.close();
    }
  });
});
