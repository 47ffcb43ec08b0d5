import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { readOutput } from "./support/derived.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule, replayProcessor, outputOf } from "../src/processors/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";
import { gatherStatus } from "../src/cli/status.js";
import { tierOf } from "../examples/pipeline/user_spend.js";
import { seededRandom } from "../src/processors/random.js";
import type { OrderEvent } from "../examples/orders/generate.js";

const STAGES = ["order_facts", "user_spend", "tier_counts"] as const;
const stage = (n: string) => resolve(`examples/pipeline/${n}.ts`);

/** The emitted money movements stage 1 must produce, in order. */
function expectedMovements(events: OrderEvent[]): [string, string][] {
  return events.flatMap((e) => {
    const d = e.data as { user: string; amount: number; order: string };
    if (e.type === "order.placed") return [["money.moved", JSON.stringify({ user: d.user, delta: d.amount, order: d.order })] as [string, string]];
    if (e.type === "order.refunded") return [["money.moved", JSON.stringify({ user: d.user, delta: -d.amount, order: d.order })] as [string, string]];
    return [];
  });
}

/** tier_counts computed directly from the events. */
function expectedTiers(events: OrderEvent[]): Record<string, number> {
  const spend = new Map<string, number>();
  for (const [, json] of expectedMovements(events)) {
    const m = JSON.parse(json) as { user: string; delta: number };
    spend.set(m.user, Math.round(((spend.get(m.user) ?? 0) + m.delta) * 100) / 100);
  }
  const tiers: Record<string, number> = {};
  for (const s of spend.values()) tiers[tierOf(s)] = (tiers[tierOf(s)] ?? 0) + 1;
  return tiers;
}

async function deployChain(env: TestEnv): Promise<void> {
  for (const s of STAGES) {
    await deployModule(env.nc, env.spec, stage(s));
    await env.waitForRecord(s, (r) => r.live !== null);
  }
}

describe("pipelines: processors that emit streams for other processors", () => {
  it("runs a three-stage chain whose every stage equals a reference, pins sources, and replays to identical digests", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(3000, 201);
    await env.startWorker();
    await deployChain(env);
    const file = (s: string, v: number) => env.dataDir.viewFile(s, v);
    await waitFor(async () => (await readOutput(env.nc, outputOf(env.spec.stream, "order_facts", 1))).length === expectedMovements(events).length, 20_000, "stage 1 output");
    const out1 = await readOutput(env.nc, outputOf(env.spec.stream, "order_facts", 1));
    expect(out1.map(([t, d]) => [t, d])).toEqual(expectedMovements(events));
    await waitFor(async () => {
      const db = (await import("better-sqlite3")).default;
      const h = new db(file("tier_counts", 1), { readonly: true });
      const rows = Object.fromEntries((h.prepare("SELECT tier, users FROM tiers").all() as { tier: string; users: number }[]).map((r) => [r.tier, r.users]));
      h.close();
      return JSON.stringify(rows) === JSON.stringify(Object.fromEntries(Object.entries(expectedTiers(events)).sort())) ? rows : undefined;
    }, 20_000, "stage 3 equals the reference");

    // Pinned: user_spend v1 reads order_facts v1; after order_facts promotes v2, status says its source is no longer live.
    const before = await gatherStatus(cliContext(env), "user_spend");
    expect(before.processors[0]!.versions[0]).toMatchObject({ source: "order_facts v1", sourceLive: true });
    await replayProcessor(env.nc, env.spec, "order_facts", { from: "start", promote: true });
    await env.waitForRecord("order_facts", (r) => r.live === 2);
    const after = await gatherStatus(cliContext(env), "user_spend");
    expect(after.processors[0]!.versions[0]).toMatchObject({ source: "order_facts v1", sourceLive: false });

    // Rebuild the rest of the chain on the new upstream output; every stage's digest equals v1's.
    await replayProcessor(env.nc, env.spec, "user_spend", { from: "start", promote: true });
    await env.waitForRecord("user_spend", (r) => r.live === 2 && r.versions["2"]!.source?.version === 2);
    await replayProcessor(env.nc, env.spec, "tier_counts", { from: "start", promote: true });
    await env.waitForRecord("tier_counts", (r) => r.live === 2 && r.versions["2"]!.source?.version === 2);
    for (const s of STAGES) {
      await waitFor(() => digestFile(file(s, 1)).digest === digestFile(file(s, 2)).digest, 20_000, `${s} v2 digest equals v1`);
    }
    // v1's output was not disturbed by v2: each version writes its own subjects.
    expect((await readOutput(env.nc, outputOf(env.spec.stream, "order_facts", 1))).length).toBe(out1.length);
    expect((await readOutput(env.nc, outputOf(env.spec.stream, "order_facts", 2))).map(([t, d]) => [t, d])).toEqual(expectedMovements(events));
  });

  it("never loses or doubles an emitted event while the worker is killed in a loop", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(60_000, 211);
    await deployModule(env.nc, env.spec, stage("order_facts"));
    const rnd = seededRandom("pipeline-kills");
    const file = env.dataDir.viewFile("order_facts", 1);
    for (let i = 0; i < 8; i++) {
      const before = readCheckpoint(file) ?? 0;
      // Small batches: each run commits a little, so every kill lands mid-stream.
      const w = WorkerProcess.start(env.server.url, env.dataDir.root, ["--batch-events", "1000"]);
      try {
        // Kill only once this run has committed something, a random moment later (kill() checks it died).
        await waitFor(() => (readCheckpoint(file) ?? 0) > before, 60_000, `progress in run ${i}`);
        await new Promise((r) => setTimeout(r, rnd() * 100));
        expect(w.exited, w.output).toBe(false); // the kill below lands on a running worker
      } finally {
        await w.kill("SIGKILL");
      }
    }
    await using last = WorkerProcess.start(env.server.url, env.dataDir.root);
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("order_facts", 1)) === events.length, 60_000, "stage 1 done");
    const expected = expectedMovements(events);
    await waitFor(async () => (await readOutput(env.nc, outputOf(env.spec.stream, "order_facts", 1))).length >= expected.length, 30_000, "outbox drained");
    const out = await readOutput(env.nc, outputOf(env.spec.stream, "order_facts", 1));
    expect(out.map(([t, d]) => [t, d])).toEqual(expected); // event by event: same order, nothing lost, nothing doubled
    expect(new Set(out.map(([, , id]) => id)).size).toBe(out.length);
    await last.kill("SIGTERM");
  }, 180_000);
});

describe("SQL processors", () => {
  it("build the same digest as the TypeScript processor from the same log, with the same versions and swap", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(3000, 221);
    await env.startWorker();
    await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const sql = await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user.sql"), { promote: true });
    expect(sql.version).toMatchObject({ version: 2, codeKind: "sql" });
    await env.waitForRecord("orders_by_user", (r) => r.live === 2);
    const f = (v: number) => env.dataDir.viewFile("orders_by_user", v);
    await waitFor(() => readCheckpoint(f(1)) === 3000 && readCheckpoint(f(2)) === 3000, 10_000, "both at head");
    expect(digestFile(f(2)).digest).toBe(digestFile(f(1)).digest);
    expect(digestFile(f(2)).digest).toBe(referenceDigest(referenceTotals(events, true)));
    expect(sql.version.queries).toEqual({ top_users: "SELECT user_id, orders, amount FROM totals ORDER BY amount DESC, user_id LIMIT :n" });
  });
});
