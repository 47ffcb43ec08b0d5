import { describe, it, expect } from "vitest";
import { join, resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { kappaAsync } from "./support/cli.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule, SnapshotStore } from "../src/processors/index.js";
import { DataDir, digestFile, readCheckpoint } from "../src/views/index.js";
import { generateOrders } from "../examples/orders/generate.js";

describe("joining from a snapshot (3-server cluster)", () => {
  it("a new replica restores the newest snapshot, replays only the tail, and ends with the full-replay digest", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = [...generateOrders(6000, 601)];
    await env.append(events.slice(0, 5000));
    const d1 = new DataDir(join(env.dir, "w1"));
    const d2 = new DataDir(join(env.dir, "w2"));
    const w1 = await env.startWorker(d1, undefined, { workerId: "w1" });
    await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await waitFor(() => readCheckpoint(d1.viewFile("orders_by_user", 1)) === 5000, 30_000, "w1 at 5000");

    // Through the binary (not blocking this process: the worker runs in it): a worker holding the version takes the copy.
    const out = await kappaAsync(["--nats", env.nats.url, "--json", "snapshot", "orders_by_user"]);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ processor: "orders_by_user", version: 1, checkpoint: 5000, worker: "w1" });

    await env.append(events.slice(5000));
    const lines: string[] = [];
    const w2 = await env.startWorker(d2, (l) => lines.push(l), { workerId: "w2" });
    const files = [d1, d2].map((d) => d.viewFile("orders_by_user", 1));
    await waitFor(() => files.every((f) => readCheckpoint(f) === 6000), 30_000, "both at 6000");
    const r2 = w2.runners.get("orders_by_user/1")!;
    expect(r2.restoredFrom).toBe(5000);
    // Only the tail was applied: the events after 5000 that orders_by_user handles, not one before.
    const handled = (es: typeof events) => es.filter((e) => e.type === "order.placed" || e.type === "order.refunded").length;
    // The apply threads report their counts after the commit that moved the checkpoint: wait for the report.
    const r1 = w1.runners.get("orders_by_user/1")!;
    await waitFor(() => r2.applied === handled(events.slice(5000)) && r1.applied === handled(events), 10_000, "the threads' applied counts").catch(() => {});
    expect(r2.applied).toBe(handled(events.slice(5000)));
    expect(r1.applied).toBe(handled(events));
    expect(lines.join("\n")).toMatch(/joined from the snapshot at 5000/);
    expect(digestFile(files[1]!).digest).toBe(digestFile(files[0]!).digest);
    expect(digestFile(files[1]!).digest).toBe(referenceDigest(referenceTotals(events, true)));
    expect(w1.runners.get("orders_by_user/1")!.restoredFrom).toBeUndefined();

    // Retention: older snapshots are pruned.
    const store = await SnapshotStore.open(env.nc, env.spec.stream);
    await store.take(files[0]!, "orders_by_user", 1, 3);
    expect((await store.list("orders_by_user", 1)).map((s) => s.checkpoint)).toEqual([6000, 5000]);
    await store.take(files[0]!, "orders_by_user", 1, 1);
    expect((await store.list("orders_by_user", 1)).map((s) => s.checkpoint)).toEqual([6000]);
  }, 120_000);
});
