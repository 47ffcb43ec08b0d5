import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { TestEnv, waitFor } from "./support/env.js";
import { kappaAsync } from "./support/cli.js";
import { descendants } from "./support/serve.js";
import { pidAlive } from "./support/dev.js";
import { Kvm } from "@nats-io/kv";
import { WorkerProcess } from "./support/workerProcess.js";
import { deployModule, leaseBucket, SnapshotStore, type TakenSnapshot } from "../src/processors/index.js";
import { Svcm } from "@nats-io/services";
import { QUERY_SERVICE, WorkerRegistry, readCheckpoint, requestSnapshot } from "../src/views/index.js";

/** The snapshot copy process of a worker, once it runs. */
function copyProcess(worker: number): number | undefined {
  return descendants(worker).find((pid) => {
    try {
      return /snapshotFile\.mjs.*"op":"copy"/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " "));
    } catch {
      return false;
    }
  });
}

describe("snapshots are taken off the worker's main thread, one at a time per version, rate-limited", () => {
  it("while a copy is held (its process SIGSTOPped) the worker renews its lease and beats; a second request joins it; a third too soon is refused", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(2000, 1301);
    // A real process: its main loop is not the test's, so a blocked loop shows as missed renewals and beats.
    await using w = WorkerProcess.start(env.nats.url, env.dataDir.root, ["--worker-id", "w1", "--snapshot-min-interval", "60"]);
    await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    const leases = await new Kvm(env.nc).open(leaseBucket(env.spec.stream));
    const lease = async () => {
      const e = await leases.get("orders_by_user.v1");
      return e?.operation === "PUT" && e.length > 0 ? { worker: e.json<{ worker: string }>().worker, revision: e.revision } : undefined;
    };
    await waitFor(async () => readCheckpoint(file) === 2000 && (await lease())?.worker === "w1", 30_000, "w1 at the head and the writer");
    const registry = await WorkerRegistry.open(env.nc, env.spec.stream);
    // What the NATS service counts (`nats micro stats kappa-query`): requests w1's snapshot endpoint received.
    const snapshotRequests = async () => {
      let n = 0;
      for await (const st of await new Svcm(env.nc as never).client().stats(QUERY_SERVICE)) n += st.endpoints?.find((e) => e.name === "snapshot_orders_by_user")?.num_requests ?? 0;
      return n;
    };
    const beats = async () => (await registry.list()).find((b) => b.worker === "w1")?.lastSeen;

    const first = requestSnapshot<TakenSnapshot>(env.nc, env.spec.stream, "orders_by_user", undefined, 60_000);
    const pid = await waitFor(() => copyProcess(w.pid), 20_000, "the snapshot copy process");
    process.kill(pid, "SIGSTOP");
    try {
      // The copy cannot move now; the worker's main loop must: leases renewed (revision moves), heartbeats written.
      const leaseRevs = new Set<number>();
      const beatTimes = new Set<string>();
      await waitFor(async () => {
        const l = await lease();
        if (l?.worker === "w1") leaseRevs.add(l.revision);
        const b = await beats();
        if (b) beatTimes.add(b);
        return leaseRevs.size >= 4 && beatTimes.size >= 3;
      }, 20_000, "lease renewals and heartbeats while the copy is stopped");
      expect((await lease())?.worker).toBe("w1");
      // A second request while the first runs joins it rather than starting another copy.
      const second = requestSnapshot<TakenSnapshot>(env.nc, env.spec.stream, "orders_by_user", undefined, 60_000);
      await waitFor(async () => (await snapshotRequests()) >= 2, 10_000, "the second request at the worker");
      expect(copyProcess(w.pid)).toBe(pid);
      process.kill(pid, "SIGCONT");
      const [a, b] = await Promise.all([first, second]);
      expect(a).toMatchObject({ checkpoint: 2000, worker: "w1" });
      expect(b).toMatchObject({ name: a.name, joined: true });
    } finally {
      if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    }
    const store = await SnapshotStore.open(env.nc, env.spec.stream);
    expect((await store.list("orders_by_user", 1)).length).toBe(1);

    // Nothing moved since: the request gets the stored one. Once it moved, a new one within the interval is refused.
    expect(await requestSnapshot<TakenSnapshot>(env.nc, env.spec.stream, "orders_by_user", undefined, 10_000)).toMatchObject({ checkpoint: 2000, unchanged: true });
    await env.appendOrders(10, 1302);
    await waitFor(() => readCheckpoint(file) === 2010, 10_000, "w1 at 2010");
    await waitFor(async () => (await registry.list()).find((b) => b.worker === "w1")?.versions[0]?.checkpoint === 2010, 10_000, "w1 reporting 2010");
    const out = await kappaAsync(["--nats", env.nats.url, "snapshot", "orders_by_user"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/kappa: orders_by_user v1 has a snapshot from [\d.]+ s ago \(orders_by_user\/v1\/000000002000, checkpoint 2000\); the next may be taken in \d+ s/);
    expect(out.stderr).toMatch(/hint: a new replica restores the newest snapshot by itself/);
  }, 120_000);
});
