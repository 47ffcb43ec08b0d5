import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { kappa } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { appendEvents, type StreamSpec } from "../src/log/index.js";
import { readCheckpoint } from "../src/views/index.js";
import { generateOrders } from "../examples/orders/generate.js";

const V2 = resolve("examples/orders/orders_by_user_v2.ts");
const FOREIGN: StreamSpec = { stream: "FOREIGN", prefix: "foreign", allowUnsafeLog: true };

/** A stream made beforehand by someone else: purge and delete allowed. */
async function foreignStream(env: TestEnv): Promise<void> {
  await env.jsm.streams.add({ name: FOREIGN.stream, subjects: [`${FOREIGN.prefix}.>`] });
}

async function appendOrders(env: TestEnv, count: number, seed: number): Promise<void> {
  const evs = [...generateOrders(count, seed)].map((e) => ({ type: e.type, id: e.id, json: JSON.stringify(e.data) }));
  await appendEvents(env.nc, FOREIGN, evs);
}

describe("the log stays append-only", () => {
  it("refuses a stream Kappa did not create that allows purge and delete, with a hint; --allow-unsafe-log accepts it and status says so", async () => {
    await using env = await TestEnv.start();
    await foreignStream(env);
    const base = ["--nats", env.server.url, "--data-dir", env.dataDir.root, "--stream", FOREIGN.stream, "--prefix", FOREIGN.prefix];
    const refused = kappa([...base, "append", "order.placed", '{"user":"u1","amount":1}']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/stream FOREIGN is not append-only: it allows deleting events, allows purging/);
    expect(refused.stderr).toMatch(/--allow-unsafe-log/);
    expect((await env.jsm.streams.info(FOREIGN.stream)).state.messages).toBe(0); // nothing was appended
    const accepted = kappa([...base, "--allow-unsafe-log", "append", "order.placed", '{"user":"u1","amount":1}']);
    expect(accepted.stderr).toBe("");
    expect(accepted.stdout).toMatch(/appended at seq 1/);
    const status = kappa([...base, "status"]);
    expect(status.stdout).toMatch(/WARNING: the log is not append-only — it allows deleting events, allows purging/);
  });

  it("fails a version with 'log truncated at …' when events below its next sequence were purged, never skips them", async () => {
    await using env = await TestEnv.start();
    await foreignStream(env);
    await appendOrders(env, 100, 501);
    const w = await env.startWorker(env.dataDir, undefined, { spec: FOREIGN });
    await deployModule(env.nc, FOREIGN, V2);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(file) === 100, 10_000, "v1 at 100");
    await w.close();
    await appendOrders(env, 100, 502);
    await env.jsm.streams.purge(FOREIGN.stream, { seq: 151 }); // 101–150 are gone before v1 read them
    await env.startWorker(env.dataDir, undefined, { spec: FOREIGN });
    const r = await env.waitForRecordOn(FOREIGN, "orders_by_user", (rec) => rec.versions["1"]!.error !== undefined, 10_000);
    expect(r.versions["1"]!.error).toMatchObject({ seq: 101 });
    expect(r.versions["1"]!.error!.message).toMatch(/^log truncated at 101: stream FOREIGN no longer holds event 101/);
    expect(readCheckpoint(file)).toBe(100);
  });

  it("fails a version whose unread tail was deleted, even with nothing left to read", async () => {
    await using env = await TestEnv.start();
    await foreignStream(env);
    await appendOrders(env, 100, 503);
    const w = await env.startWorker(env.dataDir, undefined, { spec: FOREIGN });
    await deployModule(env.nc, FOREIGN, V2);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(file) === 100, 10_000, "v1 at 100");
    await w.close();
    await appendOrders(env, 10, 504);
    for (let seq = 101; seq <= 110; seq++) await env.jsm.streams.deleteMessage(FOREIGN.stream, seq, false);
    await env.startWorker(env.dataDir, undefined, { spec: FOREIGN });
    const r = await env.waitForRecordOn(FOREIGN, "orders_by_user", (rec) => rec.versions["1"]!.error !== undefined, 10_000);
    expect(r.versions["1"]!.error!.message).toMatch(/^log truncated at 101/);
    expect(readCheckpoint(file)).toBe(100);
  });
});
