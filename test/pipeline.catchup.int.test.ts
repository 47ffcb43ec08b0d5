import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { DiscardPolicy } from "@nats-io/jetstream";
import { join } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { readOutput } from "./support/derived.js";
import { deployModule, replayProcessor, outputOf } from "../src/processors/index.js";
import { DataDir, digestFile, readCheckpoint } from "../src/views/index.js";
import type { OrderEvent } from "../examples/orders/generate.js";

const stage = (n: string) => resolve(`examples/pipeline/${n}.ts`);
const emits = (evs: OrderEvent[]) => evs.filter((e) => e.type === "order.placed" || e.type === "order.refunded").length;

/** The output stream's sequence of the last event the upstream emitted (writer fences are not events). */
async function lastEmitSeq(env: TestEnv, out: { stream: string; prefix: string }): Promise<number> {
  return (await env.jsm.streams.getMessage(out.stream, { last_by_subj: `${out.prefix}.>` }))!.seq;
}

/**
 * Where user_spend v2 went live, from the catalog's history: the checkpoint it had caught up at, checked to be
 * the entry right before its promotion. Read after the fact, so no time window decides it.
 */
async function wentLiveAt(env: TestEnv): Promise<number | undefined> {
  const h = (await env.waitForRecord("user_spend", (r) => r.live === 2)).history;
  const i = h.findIndex((e) => e.action === "promote" && e.version === 2);
  expect(h[i - 1]).toMatchObject({ action: "caught-up", version: 2 });
  return h[i - 1]!.seq;
}

describe("a pipeline stage is caught up only when its upstream is", () => {
  it("never lets a downstream --promote go live on half an upstream: it waits until the upstream's outbox is empty", async () => {
    await using env = await TestEnv.start();
    const first = await env.appendOrders(2000, 601);
    await env.startWorker();
    await deployModule(env.nc, env.spec, stage("order_facts"));
    await env.waitForRecord("order_facts", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, stage("user_spend"));
    await env.waitForRecord("user_spend", (r) => r.live === 1);
    const out = outputOf(env.spec.stream, "order_facts", 1);
    const spend = (v: number) => env.dataDir.viewFile("user_spend", v);
    // The output stream's last sequence: its emits, and the writer fences stored beside them.
    const head = async () => (await env.jsm.streams.info(out.stream)).state;
    await waitFor(async () => (await readOutput(env.nc, out)).length === emits(first) && readCheckpoint(spend(1)) === (await head()).last_seq, 20_000, "user_spend v1 read all of order_facts");
    const published = await head();

    // The upstream's output refuses more for now: order_facts applies new events, its emits wait in the outbox.
    await env.jsm.streams.update(out.stream, { max_msgs: published.messages, discard: DiscardPolicy.New });
    const more = await env.appendOrders(3000, 602);
    await waitFor(() => readCheckpoint(env.dataDir.viewFile("order_facts", 1)) === 5000, 20_000, "order_facts applied everything");
    await replayProcessor(env.nc, env.spec, "user_spend", { from: "start", promote: true });
    await waitFor(() => readCheckpoint(spend(2)) === published.last_seq, 20_000, "user_spend v2 read all the upstream has published");
    const waiting = await env.waitForRecord("user_spend", () => true);
    expect(waiting.live).toBe(1);
    expect(waiting.versions["2"]!.state).toBe("building");

    await env.jsm.streams.update(out.stream, { max_msgs: -1, discard: DiscardPolicy.Old });
    await env.waitForRecord("user_spend", (r) => r.live === 2, 20_000);
    await waitFor(async () => (await readOutput(env.nc, out)).length === emits(first) + emits(more), 20_000, "order_facts published everything");
    // It went live having read every emit, not at the half published while the output refused more.
    const at = await wentLiveAt(env);
    expect(at).toBeGreaterThan(published.last_seq);
    expect(at).toBeGreaterThanOrEqual(await lastEmitSeq(env, out));
    const all = (await head()).last_seq;
    await waitFor(() => readCheckpoint(spend(1)) === all && readCheckpoint(spend(2)) === all, 20_000, "both at the full upstream");
    expect(digestFile(spend(2)).digest).toBe(digestFile(spend(1)).digest);
  });

  it("with the upstream on another worker: a report that said 'caught up' before events came counts only while its checkpoint reaches the upstream's input head", async () => {
    await using env = await TestEnv.start();
    const first = await env.appendOrders(2000, 611);
    const upDir = new DataDir(join(env.dataDir.root, "..", "upstream-worker"));
    let upstream = await env.startWorker(upDir, undefined, { processors: ["order_facts"] });
    await env.startWorker(env.dataDir, undefined, { processors: ["user_spend"] });
    await deployModule(env.nc, env.spec, stage("order_facts"));
    await env.waitForRecord("order_facts", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, stage("user_spend"));
    await env.waitForRecord("user_spend", (r) => r.live === 1);
    const out = outputOf(env.spec.stream, "order_facts", 1);
    const spend = (v: number) => env.dataDir.viewFile("user_spend", v);
    const head = async () => (await env.jsm.streams.info(out.stream)).state.last_seq;
    await waitFor(async () => (await readOutput(env.nc, out)).length === emits(first) && readCheckpoint(spend(1)) === (await head()), 20_000, "user_spend v1 read all of order_facts");
    // The upstream's last report says caught up, nothing pending, outbox empty; then its worker stops.
    await waitFor(async () => {
      const s = await (await env.catalog()).stats("order_facts", 1);
      return s !== null && s.caughtUp && s.checkpoint === 2000 && s.outbox === 0;
    }, 10_000, "order_facts reported caught up");
    await upstream.close();

    const more = await env.appendOrders(3000, 612);
    const published = await head();
    await replayProcessor(env.nc, env.spec, "user_spend", { from: "start", promote: true });
    await waitFor(() => readCheckpoint(spend(2)) === published, 20_000, "user_spend v2 read all the upstream has published");
    const waiting = await env.waitForRecord("user_spend", () => true);
    expect(waiting.live).toBe(1);
    expect(waiting.versions["2"]!.state).toBe("building");

    upstream = await env.startWorker(upDir, undefined, { processors: ["order_facts"] });
    await env.waitForRecord("user_spend", (r) => r.live === 2, 30_000);
    await waitFor(async () => (await readOutput(env.nc, out)).length === emits(first) + emits(more), 20_000, "order_facts published everything");
    // Live only after the upstream's emits of the 3,000 new events were in and read (fails without the head check).
    const at = await wentLiveAt(env);
    expect(at).toBeGreaterThan(published);
    expect(at).toBeGreaterThanOrEqual(await lastEmitSeq(env, out));
    const all = await head();
    await waitFor(() => readCheckpoint(spend(1)) === all && readCheckpoint(spend(2)) === all, 20_000, "both at the full upstream");
    expect(digestFile(spend(2)).digest).toBe(digestFile(spend(1)).digest);
  });
});
