import { describe, it, expect } from "vitest";
import { join, resolve } from "node:path";
import { headers } from "@nats-io/nats-core";
import { TestEnv, waitFor } from "./support/env.js";
import { readOutput } from "./support/derived.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { referenceMovementsDigest } from "./support/reference.js";
import { deployModule, installFence, LeaseTable, outputOf } from "../src/processors/index.js";
import { DataDir, claimWriter, digestFile, markCaughtUp, readCheckpoint, registerVersion } from "../src/views/index.js";
import type { OrderEvent } from "../examples/orders/generate.js";

const ORDER_FACTS = resolve("examples/pipeline/order_facts.ts");

/** The money movements order_facts emits from these events, in order: what a clean run publishes. */
function expectedMovements(events: OrderEvent[]): [string, string][] {
  return events.flatMap((e) => {
    const d = e.data as { user: string; amount: number; order: string };
    if (e.type === "order.placed") return [["money.moved", JSON.stringify({ user: d.user, delta: d.amount, order: d.order })] as [string, string]];
    if (e.type === "order.refunded") return [["money.moved", JSON.stringify({ user: d.user, delta: -d.amount, order: d.order })] as [string, string]];
    return [];
  });
}

async function writerOf(env: TestEnv, name: string, version = 1): Promise<{ worker: string; token: number } | undefined> {
  const r = await (await env.catalog()).get(name);
  return r?.record.versions[String(version)]?.writer;
}

describe("writer leases and fencing tokens (3-server cluster, workers as subprocesses)", () => {
  it("a lease has one holder; a newer holder's fence refuses the older one's emits and catalog changes", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const a = await LeaseTable.open(env.nc, env.spec.stream, "a", 600);
    const b = await LeaseTable.open(env.nc, env.spec.stream, "b", 600);
    const la = await a.acquire("x.v1");
    expect(la).toBeDefined();
    expect(await b.acquire("x.v1")).toBeUndefined();
    expect(await a.renew("x.v1")).toBe(true);
    // a stops renewing (paused): its own clock ends its lease before the server lets b in.
    const lb = await waitFor(() => b.acquire("x.v1"), 5000, "b takes the expired lease");
    expect(a.held("x.v1")).toBeUndefined();
    expect(lb.token).toBeGreaterThan(la!.token);
    expect(await a.renew("x.v1")).toBe(false);

    // Catalog: only the newest token may record transitions.
    const cat = await env.catalog();
    await registerVersion(cat, "x", { codeHash: "h", codeKind: "js", from: "start", subjects: [] }, "deploy");
    await claimWriter(cat, "x", 1, { worker: "a", token: la!.token });
    await claimWriter(cat, "x", 1, { worker: "b", token: lb.token });
    await expect(claimWriter(cat, "x", 1, { worker: "a", token: la!.token })).rejects.toMatchObject({ code: "FENCED" });
    await expect(markCaughtUp(cat, "x", 1, { worker: "a", token: la!.token })).rejects.toMatchObject({ code: "FENCED" });
    expect((await cat.get("x"))!.record.versions["1"]!.state).toBe("building");
    await markCaughtUp(cat, "x", 1, { worker: "b", token: lb.token });
    expect((await cat.get("x"))!.record.live).toBe(1);

    // Output: emits carry the fence; once b fenced the stream, a's emits and a's fence are refused.
    const out = outputOf(env.spec.stream, "x", 1);
    const fa = await installFence(env.nc, out, { worker: "a", token: la!.token });
    const pub = (f: { headers: Record<string, string> }, id: string) => {
      const h = headers();
      for (const [k, v] of Object.entries(f.headers)) h.set(k, v);
      h.set("Nats-Msg-Id", id);
      return env.js.publish(`${out.prefix}.money.moved`, "{}", { headers: h });
    };
    await pub(fa, "x:1:7:0");
    const fb = await installFence(env.nc, out, { worker: "b", token: lb.token });
    expect(fb.publishedUpTo).toEqual({ seq: 7, idx: 0 });
    await expect(pub(fa, "x:1:8:0")).rejects.toThrow(/wrong last sequence/);
    await expect(installFence(env.nc, out, { worker: "a", token: la!.token })).rejects.toMatchObject({ code: "FENCED" });
    await pub(fb, "x:1:8:0");
    expect((await readOutput(env.nc, out)).map(([, , id]) => id)).toEqual(["x:1:7:0", "x:1:8:0"]);
  });

  it("the writer of an emitting stage is killed mid-build: another replica takes over and the output equals a clean run, event by event", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = await env.appendOrders(120_000, 301);
    const dirs = ["w1", "w2"].map((w) => new DataDir(join(env.dir, w)));
    const procs = new Map<string, WorkerProcess>();
    // Small batches: the build takes long enough to be killed in the middle of it.
    const start = (w: string, i: number) => procs.set(w, WorkerProcess.start(env.nats.url, dirs[i]!.root, ["--worker-id", w, "--batch-events", "200"], ["--replicas", "3"]));
    try {
      start("w1", 0);
      start("w2", 1);
      await deployModule(env.nc, env.spec, ORDER_FACTS);
      const out = outputOf(env.spec.stream, "order_facts", 1);
      const expected = expectedMovements(events);
      const published = async () => (await env.jsm.streams.info(out.stream).catch(() => null))?.state.messages ?? 0;
      // Kill at the first published emit: an idle machine publishes the rest within a few rounds.
      await waitFor(async () => (await published()) > 0, 60_000, "output under way");
      const writer = (await writerOf(env, "order_facts"))!;
      await procs.get(writer.worker)!.kill("SIGKILL");
      expect(await published()).toBeLessThan(expected.length); // killed mid-build
      const other = writer.worker === "w1" ? "w2" : "w1";
      const next = await waitFor(async () => {
        const w = await writerOf(env, "order_facts");
        return w && w.worker === other ? w : undefined;
        // How fast (3.1–3.7 s at the default 3 s TTL) is bench/cluster.ts's job; a loaded CI machine only has to get there.
      }, 30_000, "takeover by the other replica");
      expect(next.token).toBeGreaterThan(writer.token);

      await waitFor(async () => (await readOutput(env.nc, out)).length >= expected.length, 60_000, "output complete");
      const got = await readOutput(env.nc, out);
      expect(got.map(([t, d]) => [t, d])).toEqual(expected); // same order, nothing lost, nothing doubled
      expect(new Set(got.map(([, , id]) => id)).size).toBe(got.length);

      // The killed worker rejoins as a replica; each replica equals the reference built from the events.
      start(writer.worker, writer.worker === "w1" ? 0 : 1);
      const files = dirs.map((d) => d.viewFile("order_facts", 1));
      await waitFor(() => files.every((f) => readCheckpoint(f) === events.length), 60_000, "both replicas at the head");
      const reference = referenceMovementsDigest(events);
      expect(files.map((f) => digestFile(f).digest)).toEqual([reference, reference]);
      expect((await readOutput(env.nc, out)).length).toBe(expected.length);
    } catch (err) {
      for (const [w, p] of procs) console.error(`--- ${w}\n${p.output.slice(-3000)}`);
      throw err;
    } finally {
      for (const p of procs.values()) await p.kill();
    }
  }, 180_000);

  it("a writer paused past its lease and resumed publishes nothing and changes nothing in the catalog, and rejoins as a replica", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = await env.appendOrders(40_000, 311);
    const dirs = ["w1", "w2"].map((w) => new DataDir(join(env.dir, w)));
    const procs = new Map<string, WorkerProcess>();
    try {
      procs.set("w1", WorkerProcess.start(env.nats.url, dirs[0]!.root, ["--worker-id", "w1", "--lease-ttl", "1"], ["--replicas", "3"]));
      procs.set("w2", WorkerProcess.start(env.nats.url, dirs[1]!.root, ["--worker-id", "w2", "--lease-ttl", "1"], ["--replicas", "3"]));
      await deployModule(env.nc, env.spec, ORDER_FACTS);
      const out = outputOf(env.spec.stream, "order_facts", 1);
      await waitFor(async () => (await readOutput(env.nc, out)).length > 1000, 60_000, "output under way");
      const writer = (await writerOf(env, "order_facts"))!;
      const paused = procs.get(writer.worker)!;
      paused.signal("SIGSTOP");
      const other = writer.worker === "w1" ? "w2" : "w1";
      await waitFor(async () => (await writerOf(env, "order_facts"))?.worker === other, 10_000, "takeover");
      const expected = expectedMovements(events);
      await env.waitForRecord("order_facts", (r) => r.live === 1, 60_000);
      await waitFor(async () => (await readOutput(env.nc, out)).length >= expected.length, 60_000, "output complete");
      const cat = await env.catalog();
      const revBefore = (await cat.get("order_facts"))!.revision;
      const lastBefore = (await env.jsm.streams.info(out.stream)).state.last_seq;
      const logBefore = paused.output.length;

      paused.signal("SIGCONT");
      const pausedFile = dirs[writer.worker === "w1" ? 0 : 1]!.viewFile("order_facts", 1);
      await waitFor(() => readCheckpoint(pausedFile) === events.length, 60_000, "the resumed worker catches up as a replica");
      await waitFor(() => paused.output.slice(logBefore).includes("no longer the writer"), 10_000, "the resumed worker steps down");
      await new Promise((r) => setTimeout(r, 1500)); // time to do harm, if it could
      expect((await env.jsm.streams.info(out.stream)).state.last_seq).toBe(lastBefore);
      expect((await cat.get("order_facts"))!.revision).toBe(revBefore);
      expect(paused.output.slice(logBefore)).not.toMatch(/: writer \(token/);
      const got = await readOutput(env.nc, out);
      expect(got.map(([t, d]) => [t, d])).toEqual(expected);
      const otherFile = dirs[writer.worker === "w1" ? 1 : 0]!.viewFile("order_facts", 1);
      const reference = referenceMovementsDigest(events);
      expect([digestFile(pausedFile).digest, digestFile(otherFile).digest]).toEqual([reference, reference]);
    } catch (err) {
      for (const [w, p] of procs) console.error(`--- ${w}\n${p.output.slice(-3000)}`);
      throw err;
    } finally {
      for (const p of procs.values()) await p.kill();
    }
  }, 180_000);
});
