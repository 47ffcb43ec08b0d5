import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { digestFile, readCheckpoint, promote, rollback } from "../src/views/index.js";
import { appendEvents, type StreamSpec } from "../src/log/index.js";
import { generateOrders } from "../examples/orders/generate.js";

const V2 = resolve("examples/orders/orders_by_user_v2.ts");

describe("time travel: the offset's edges", () => {
  it("--until on a filtered-out event, an unhandled type, mid-batch and a filtered tail applies exactly up to it, and a worker restart never moves it; rollback never puts a frozen version live", async () => {
    await using env = await TestEnv.start();
    const a = await env.appendOrders(600, 41); // seqs 1..600
    await env.append([{ type: "user.signup", id: "s1", data: { user: "x" } }]); // 601: outside the processor's subjects
    await env.append([{ type: "order.shipped", id: "h1", data: { user: "x" } }]); // 602: its subjects, no handler
    const b = await env.appendOrders(300, 42); // 603..902
    const tail = await env.append([{ type: "user.signup", id: "s2", data: { user: "y" } }]); // 903: nothing matching after 902
    expect(tail).toBe(903);
    let worker = await env.startWorker();
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);

    const cases: [string, number, ReturnType<typeof referenceTotals>][] = [
      ["601", 601, referenceTotals(a, true)],
      ["602", 602, referenceTotals(a, true)],
      ["750", 750, referenceTotals([...a, ...b.slice(0, 750 - 602)], true)],
      ["903", 903, referenceTotals([...a, ...b], true)],
    ];
    const versions: number[] = [];
    for (const [until, seq] of cases) {
      const r = await replayProcessor(env.nc, env.spec, "orders_by_user", { from: "start", until });
      expect(r.version.untilSeq).toBe(seq);
      versions.push(r.version.version);
    }
    await env.waitForRecord("orders_by_user", (r) => versions.every((v) => r.versions[String(v)]!.state === "caught-up"));
    const files = versions.map((v) => env.dataDir.viewFile("orders_by_user", v));
    const check = () => {
      expect(files.map(readCheckpoint)).toEqual(cases.map((c) => c[1]));
      expect(files.map((f) => digestFile(f).digest)).toEqual(cases.map((c) => referenceDigest(c[2])));
    };
    check();

    // The worker stops; events arrive; a new worker (same data directory) follows the log with v1 only.
    await worker.close();
    const c = await env.appendOrders(400, 43);
    worker = await env.startWorker();
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) === 1303, 20_000, "v1 at the new head");
    await new Promise((r) => setTimeout(r, 600)); // past the idle check
    check();
    expect(digestFile(env.dataDir.viewFile("orders_by_user", 1)).digest).toBe(referenceDigest(referenceTotals([...a, ...b, ...c], true)));

    // Forced live, then replaced: a rollback (which takes no --force) refuses to put the frozen version back.
    const cat = await env.catalog();
    const frozen = versions[0]!;
    await promote(cat, "orders_by_user", frozen, { force: true });
    await promote(cat, "orders_by_user", 1);
    await expect(rollback(cat, "orders_by_user", { expectedLive: 1 })).rejects.toMatchObject({ code: "FROZEN_VERSION" });
    expect((await cat.get("orders_by_user"))!.record.live).toBe(1);
  });
});

describe("time travel: a purged past", () => {
  it("--until before the log's first event (purged) is refused with what to do, instead of a version that fails on the gap", async () => {
    await using env = await TestEnv.start();
    // A stream made beforehand by someone else, where purge is allowed (Kappa's own streams deny it).
    const spec: StreamSpec = { stream: "FOREIGN", prefix: "foreign", allowUnsafeLog: true };
    await env.jsm.streams.add({ name: spec.stream, subjects: [`${spec.prefix}.>`] });
    await appendEvents(env.nc, spec, [...generateOrders(20, 44)].map((e) => ({ type: e.type, id: e.id, json: JSON.stringify(e.data) })));
    await deployModule(env.nc, spec, V2);
    await env.jsm.streams.purge(spec.stream, { seq: 11 }); // keeps 11..20
    await expect(replayProcessor(env.nc, spec, "orders_by_user", { from: "start", until: "5" })).rejects.toMatchObject({ code: "UNTIL_GONE" });
    const r = await replayProcessor(env.nc, spec, "orders_by_user", { from: "11", until: "15" });
    expect(r.version.untilSeq).toBe(15);
  });
});
