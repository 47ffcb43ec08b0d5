import { describe, it, expect } from "vitest";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { TestEnv, waitFor } from "./support/env.js";
import { writeProcessor } from "./support/processors.js";
import { kappaAsync } from "./support/cli.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { connectNats, readBatches } from "../src/log/index.js";
import { deployModule } from "../src/processors/index.js";
import { Catalog, CatalogConflictError, digestFile, promote, readCheckpoint, type ProcessorRecord } from "../src/views/index.js";
import { generateOrders } from "../examples/orders/generate.js";

/** orders_by_user v1 (refunds ignored) with deterministic busy work per event. */
const SLOW_ORDERS = writeProcessor(`
export default {
  name: "orders_by_user",
  subjects: ["order.*"],
  schema: ["CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)"],
  on: {
    "order.placed": (e, ctx) => {
      let x = 0;
      for (let i = 0; i < 100000; i++) x = (x + i) % 7;
      ctx.db.prepare("INSERT INTO totals VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1 + ?, amount = round(amount + excluded.amount, 2)").run(e.data.user, e.data.amount, x - x);
    },
  },
};
`);

/** A record with versions 1..n, all caught up, v1 live. */
function recordWith(n: number): ProcessorRecord {
  const versions: ProcessorRecord["versions"] = {};
  for (let v = 1; v <= n; v++) {
    versions[String(v)] = { version: v, codeHash: "0".repeat(64), codeKind: "js", from: "start", subjects: [], state: v === 1 ? "live" : "caught-up", createdAt: new Date(0).toISOString() };
  }
  return { name: "cas", live: 1, previousLive: [], nextVersion: n + 1, versions, history: [] };
}

/** Every event in the stream, in sequence order, as "id data" lines. */
async function logLines(nc: NatsConnection, stream: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const dec = new TextDecoder();
  for await (const b of readBatches(jetstream(nc), { stream, prefix, startSeq: 1, follow: false })) {
    for (const e of b.events) out.push(`${e.id} ${dec.decode(e.data)}`);
  }
  return out;
}

const sha = (lines: string[]) => createHash("sha256").update(lines.join("\n")).digest("hex");

describe("a 3-server JetStream cluster on loopback", () => {
  it("lets exactly one of twelve concurrent promotions through different servers win, in each of 300 rounds, and the history agrees", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const setup = await Catalog.open(env.nc, env.spec.stream, 3);
    await setup.mutate("cas", () => recordWith(13));
    const conns = await Promise.all(Array.from({ length: 12 }, (_, i) => connectNats({ url: env.cluster.urls[i % 3]!, reconnectForever: true })));
    try {
      const catalogs = await Promise.all(conns.map((c) => Catalog.open(c, env.spec.stream)));
      let live = 1;
      const winners: number[] = [];
      const winnersPerRound: number[] = [];
      for (let round = 0; round < 300; round++) {
        const candidates = Array.from({ length: 13 }, (_, i) => i + 1).filter((v) => v !== live);
        const results = await Promise.allSettled(candidates.map((v, i) => promote(catalogs[i]!, "cas", v, { expectedLive: live })));
        const won = candidates.filter((_, i) => results[i]!.status === "fulfilled");
        for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(CatalogConflictError);
        winnersPerRound.push(won.length);
        if (won.length > 0) live = won[0]!;
        winners.push(...won);
      }
      expect(winnersPerRound.filter((n) => n !== 1)).toEqual([]);
      const final = (await setup.get("cas"))!.record;
      expect(final.live).toBe(live);
      expect(final.history.filter((h) => h.action === "promote").map((h) => h.version)).toEqual(winners);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  }, 180_000);

  it("ends a replay with the clean digest when the stream's leader is killed in the middle of it", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = await env.appendOrders(20_000, 5);
    const workerLog: string[] = [];
    // Without --replicas, everything the worker and deploy create takes the stream's 3 replicas.
    const bare = { ...env.spec, replicas: undefined };
    await env.startWorker(env.dataDir, (l) => workerLog.push(l), { limits: { maxEvents: 200 }, spec: bare });
    // A handler that takes a while per event, so the replay lasts seconds and the kill lands inside it.
    await deployModule(env.nc, bare, SLOW_ORDERS);
    await waitFor(() => (readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) ?? 0) >= 1, 30_000, "the version to start");
    const created: string[] = [];
    for await (const si of env.jsm.streams.list()) created.push(`${si.config.name} R${si.config.num_replicas}`);
    expect(created.length).toBeGreaterThanOrEqual(6); // log, catalog, code, leases, heartbeats, snapshots (and outputs when any)
    expect(created.filter((c) => !c.endsWith(" R3"))).toEqual([]);
    const leader = await env.leaderOf();
    const pid = env.cluster.servers[leader]!.pid;
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => (readCheckpoint(file) ?? 0) >= 1, 30_000, "fresh progress before the kill");
    await env.cluster.kill(leader);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(readCheckpoint(file)!).toBeLessThan(20_000);
    await waitFor(() => readCheckpoint(file) === 20_000, 90_000, "the replay to finish on the new leader").catch((err: Error) => {
      throw new Error(`${err.message} (checkpoint ${readCheckpoint(file)}); worker said:\n${workerLog.slice(-20).join("\n")}`);
    });
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(events)));
  }, 180_000);

  it("keeps every line of an `append --file` exactly once when the stream's leader is killed while it runs", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const lines = [...generateOrders(30_000, 9)].map((e) => JSON.stringify({ type: e.type, id: e.id, data: e.data }));
    const file = join(env.dir, "orders.ndjson");
    writeFileSync(file, lines.join("\n") + "\n");
    const args = ["append", "--file", file, "--nats", env.nats.url, "--data-dir", env.dataDir.root];
    let firstDone = false;
    const first = kappaAsync(args).finally(() => (firstDone = true));
    await waitFor(async () => (await env.jsm.streams.info(env.spec.stream)).state.messages > 0, 30_000, "the append to store its first events");
    const leader = await env.leaderOf();
    const pid = env.cluster.servers[leader]!.pid;
    expect(firstDone).toBe(false); // the kill lands while the append runs
    await env.cluster.kill(leader);
    expect(() => process.kill(pid, 0)).toThrow();
    let run = await first;
    // A run that lost acks in the failover fails with a reason; running it again stores only what is missing.
    for (let attempt = 0; run.code !== 0 && attempt < 3; attempt++) {
      expect(run.stderr).toMatch(/hint:/);
      run = await kappaAsync(args);
    }
    expect(run.code, run.stderr).toBe(0);
    const stored = await logLines(env.nc, env.spec.stream, env.spec.prefix);
    expect(stored.length).toBe(lines.length);
    const expected = lines.map((l) => {
      const e = JSON.parse(l) as { id: string; data: unknown };
      return `${e.id} ${JSON.stringify(e.data)}`;
    });
    // In file order too: each batch is stored whole or not at all, the next only after the previous one's commit.
    expect(sha(stored)).toBe(sha(expected));
  }, 180_000);
});
