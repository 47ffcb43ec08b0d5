import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { appendEvents, ensureStream, type StreamSpec } from "../src/log/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";
import { generateOrders } from "../examples/orders/generate.js";

const V2 = resolve("examples/orders/orders_by_user_v2.ts");

/** Builds orders_by_user v1 from 3,000 events into the env's data dir, then stops the worker. */
async function buildFirstLog(env: TestEnv): Promise<string> {
  await env.appendOrders(3000, 401);
  const w = await env.startWorker();
  await deployModule(env.nc, env.spec, V2);
  const file = env.dataDir.viewFile("orders_by_user", 1);
  await waitFor(() => readCheckpoint(file) === 3000, 20_000, "v1 built from the first log");
  await w.close();
  return file;
}

describe("a view file belongs to one log", () => {
  it("is rebuilt, not reused, when the same data dir meets another stream", async () => {
    await using env = await TestEnv.start();
    const file = await buildFirstLog(env);
    const other: StreamSpec = { stream: "OTHER", prefix: "other" };
    await ensureStream(env.nc, other);
    const events = [...generateOrders(5, 402)];
    await appendEvents(env.nc, other, events.map((e) => ({ type: e.type, id: e.id, json: JSON.stringify(e.data) })));
    const log: string[] = [];
    await env.startWorker(env.dataDir, (l) => log.push(l), { spec: other });
    await deployModule(env.nc, other, V2); // OTHER's catalog starts again at v1: the same file name
    await waitFor(() => readCheckpoint(file) === 5, 10_000, "v1 rebuilt from OTHER");
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(events, true)));
    expect(log.join("\n")).toMatch(/was built from log KAPPA@.* not OTHER@.* rebuilt from the log/);
  });

  it("is rebuilt, not reused, after the NATS store was wiped and the catalog began again at v1", async () => {
    await using first = await TestEnv.start();
    const file = await buildFirstLog(first);
    await using wiped = await TestEnv.start(); // a fresh store: same stream name, a new log
    const events = await wiped.appendOrders(5, 403);
    await wiped.startWorker(first.dataDir);
    await deployModule(wiped.nc, wiped.spec, V2);
    await waitFor(() => readCheckpoint(file) === 5, 10_000, "v1 rebuilt from the new log");
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(events, true)));
  });
});
