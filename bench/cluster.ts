/**
 * `npx tsx bench/cluster.ts [--events N] [--query-seconds S] [--failovers K]`: scale-out on a 3-server
 * loopback cluster, with `kappa run` workers as subprocesses. Measures (1) remote query throughput with
 * one and with two workers, (2) failover: the writer of an emitting stage killed → the next emit published,
 * (3) joining from a snapshot vs a full replay of N events. Writes a section of bench/RESULTS.md
 * (between the cluster markers) and bench/cluster-results.json.
 */
import { parseArgs } from "node:util";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster, connectNats, ensureStream } from "../src/log/index.js";
import { deployModule, outputOf } from "../src/processors/index.js";
import { Catalog, DataDir, readCheckpoint, remoteQuery, requestSnapshot } from "../src/views/index.js";
import { SPEC, corpusFile, fill, scratch, removeScratch } from "./lib/env.js";
import { spawnKappa, repoRoot, type KappaProcess } from "./lib/kappaProc.js";
import { withScope, type Scope } from "./lib/scope.js";
import { latency, round, sleep } from "./lib/stats.js";
import { machineFacts } from "./lib/machine.js";

const { values: o } = parseArgs({ options: { events: { type: "string", default: "1000000" }, "query-seconds": { type: "string", default: "5" }, failovers: { type: "string", default: "3" } } });
const EVENTS = Number(o.events);
const QUERY_S = Number(o["query-seconds"]);
const FAILOVERS = Number(o.failovers);
const spec = { ...SPEC, replicas: 3 };

async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 600_000, everyMs = 50): Promise<number> {
  const t0 = performance.now();
  while (!(await fn())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
  return performance.now() - t0;
}

function worker(scope: Scope, url: string, dir: string, id: string, extra: string[] = [], stream = "KAPPA", prefix = "events"): KappaProcess {
  return spawnKappa(scope, ["--nats", url, "--data-dir", dir, "--stream", stream, "--prefix", prefix, "--replicas", "3", "run", "--worker-id", id, ...extra]);
}

/** Queries per second over NATS with `concurrency` requests in flight for `seconds`. */
async function throughput(nc: Parameters<typeof remoteQuery>[0], seconds: number, concurrency = 8): Promise<{ qps: number; p50: number; p99: number; byWorker: Record<string, number> }> {
  const end = performance.now() + seconds * 1000;
  const times: number[] = [];
  const byWorker: Record<string, number> = {};
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const a = await remoteQuery(nc, "KAPPA", "orders_by_user", { sql: "top_users", params: { n: 10 }, timeoutMs: 10_000 });
      times.push(performance.now() - t);
      byWorker[a.worker] = (byWorker[a.worker] ?? 0) + 1;
    }
  }));
  const l = latency(times);
  return { qps: round(times.length / seconds), p50: round(l.p50, 2), p99: round(l.p99, 2), byWorker };
}

const results = await withScope(async (scope) => {
  const cluster = await NatsCluster.start({ servers: 3 });
  scope.defer("cluster", () => cluster.close());
  const url = cluster.url;
  const nc = await connectNats({ url, reconnectForever: true });
  scope.defer("nc", () => nc.close());
  await ensureStream(nc, spec);
  const corpus = await corpusFile(EVENTS);
  await fill(nc, corpus, EVENTS, `fill ${EVENTS}`);
  const jsm = await jetstreamManager(nc);
  const head = async () => (await jsm.streams.info("KAPPA")).state.last_seq;

  // Full replay: one worker builds orders_by_user from the start.
  const d1 = join(scratch, "w1");
  const w1 = worker(scope, url, d1, "w1");
  await w1.waitForLine(/worker w1 running/, 60_000);
  const t0 = performance.now();
  await deployModule(nc, spec, resolve(repoRoot, "examples/orders/orders_by_user_v2.ts"));
  const file1 = new DataDir(d1).viewFile("orders_by_user", 1);
  await until("w1 full replay", () => readCheckpoint(file1) === EVENTS, 1_800_000, 200);
  const fullMs = performance.now() - t0;
  process.stderr.write(`  full replay of ${EVENTS}: ${round(fullMs)} ms\n`);
  const catalog = await Catalog.open(nc, "KAPPA");
  await until("live", async () => (await catalog.get("orders_by_user"))?.record.live === 1);

  // Remote query throughput: one worker, then two.
  const one = await throughput(nc, QUERY_S);
  process.stderr.write(`  remote queries, 1 worker: ${one.qps}/s\n`);

  // Snapshot, a tail of 1%, then a second worker joins from the snapshot.
  const snapT = performance.now();
  const snap = await requestSnapshot<{ checkpoint: number; bytes: number }>(nc, "KAPPA", "orders_by_user", undefined, 300_000);
  const snapshotMs = performance.now() - snapT;
  const tail = Math.max(1, Math.round(EVENTS / 100));
  const { appendEvents } = await import("../src/log/index.js");
  await appendEvents(nc, spec, (function* () {
    for (let i = 0; i < tail; i++) yield { type: "order.placed", id: `tail-${i}`, json: JSON.stringify({ order: `t${i}`, user: `u${i % 500}`, product: "p1", amount: 1, quantity: 1 }) };
  })());
  const target = await head();
  const d2 = join(scratch, "w2");
  const joinT = performance.now();
  const w2 = worker(scope, url, d2, "w2");
  const file2 = new DataDir(d2).viewFile("orders_by_user", 1);
  await until("w2 joined", () => readCheckpoint(file2) === target, 1_800_000, 100);
  const joinMs = performance.now() - joinT;
  const joined = w2.lines.some((l) => /joined from the snapshot/.test(l));
  process.stderr.write(`  join from snapshot at ${snap.checkpoint} + ${tail} tail: ${round(joinMs)} ms (restored: ${joined})\n`);
  await until("w1 at the head", () => readCheckpoint(file1) === target);
  const two = await throughput(nc, QUERY_S);
  process.stderr.write(`  remote queries, 2 workers: ${two.qps}/s\n`);
  await w2.stop();
  await w1.stop();

  // Failover on a small separate stream: an emitting stage on a trickle; kill its writer, time the next emit.
  const fspec = { stream: "FAIL", prefix: "fail", replicas: 3 };
  await ensureStream(nc, fspec);
  const dirs = [join(scratch, "f1"), join(scratch, "f2")];
  const procs: KappaProcess[] = dirs.map((d, i) => worker(scope, url, d, `f${i + 1}`, [], "FAIL", "fail"));
  await Promise.all(procs.map((p, i) => p.waitForLine(new RegExp(`worker f${i + 1} running`), 60_000)));
  await deployModule(nc, fspec, resolve(repoRoot, "examples/pipeline/order_facts.ts"));
  const fcat = await Catalog.open(nc, "FAIL");
  const out = outputOf("FAIL", "order_facts", 1);
  let n = 0;
  let trickling = true;
  const trickle = (async () => {
    while (trickling) {
      await appendEvents(nc, fspec, [{ type: "order.placed", id: `f-${n}`, json: JSON.stringify({ order: `f${n}`, user: "u1", product: "p", amount: 1, quantity: 1 }) }]).catch(() => {});
      n++;
      await sleep(50);
    }
  })();
  const emitted = async () => (await jsm.streams.getMessage(out.stream, { last_by_subj: `${out.prefix}.>` }).catch(() => null))?.seq ?? 0;
  await until("first emit", async () => (await emitted()) > 0, 60_000);
  const failovers: number[] = [];
  for (let k = 0; k < FAILOVERS; k++) {
    const writer = (await fcat.get("order_facts"))!.record.versions["1"]!.writer!.worker;
    const i = Number(writer.slice(1)) - 1;
    await sleep(1000);
    const before = await emitted();
    const killT = performance.now();
    process.kill(procs[i]!.pid, "SIGKILL");
    await until("an emit after the kill", async () => (await emitted()) > before + 1, 60_000, 20);
    failovers.push(performance.now() - killT);
    process.stderr.write(`  failover ${k + 1}: ${round(failovers.at(-1)!)} ms\n`);
    procs[i] = worker(scope, url, dirs[i]!, writer, [], "FAIL", "fail");
    await procs[i]!.waitForLine(new RegExp(`worker ${writer} running`), 60_000);
    await sleep(2000);
  }
  trickling = false;
  await trickle;
  return {
    startedAt: new Date().toISOString(),
    machine: machineFacts(),
    events: EVENTS,
    remoteQueries: { oneWorker: one, twoWorkers: two, ratio: round(two.qps / one.qps, 2) },
    failoverMs: { each: failovers.map((x) => round(x)), max: round(Math.max(...failovers)), leaseTtlMs: 3000 },
    snapshot: { checkpoint: snap.checkpoint, bytes: snap.bytes, takeMs: round(snapshotMs), tailEvents: tail, joinMs: round(joinMs), restored: joined, fullReplayMs: round(fullMs), ratio: round(joinMs / fullMs, 3) },
  };
});
removeScratch();

const dir = new URL(".", import.meta.url).pathname;
writeFileSync(join(dir, "cluster-results.json"), JSON.stringify(results, null, 2) + "\n");
const r = results;
const section = `<!-- cluster:start -->
## Scale-out on a 3-server loopback cluster (\`npx tsx bench/cluster.ts\`, ${r.startedAt.slice(0, 16)})

Workers are \`kappa run\` subprocesses; everything Kappa creates has 3 replicas. ${r.machine.cores} cores (${r.machine.cpu}) shared by the servers, the workers and the client.

| measure | result |
| --- | --- |
| remote query \`top_users\` (8 in flight), 1 worker | ${r.remoteQueries.oneWorker.qps}/s, p50 ${r.remoteQueries.oneWorker.p50} ms, p99 ${r.remoteQueries.oneWorker.p99} ms |
| same, 2 workers | ${r.remoteQueries.twoWorkers.qps}/s, p50 ${r.remoteQueries.twoWorkers.p50} ms (answers: ${Object.entries(r.remoteQueries.twoWorkers.byWorker).map(([w, c]) => `${w} ${c}`).join(", ")}); ${r.remoteQueries.ratio}x |
| failover: writer SIGKILLed → next emit published (lease TTL 3 s) | ${r.failoverMs.each.join(", ")} ms (max ${r.failoverMs.max}) |
| full replay of ${r.events.toLocaleString("en")} events (one worker) | ${r.snapshot.fullReplayMs} ms |
| snapshot at ${r.snapshot.checkpoint.toLocaleString("en")} (${(r.snapshot.bytes / 1e6).toFixed(1)} MB) | taken and stored in ${r.snapshot.takeMs} ms |
| new worker joins from it + ${r.snapshot.tailEvents.toLocaleString("en")} tail events | ${r.snapshot.joinMs} ms (${r.snapshot.ratio}x the full replay; restored: ${r.snapshot.restored}) |
<!-- cluster:end -->`;
const md = join(dir, "RESULTS.md");
const text = existsSync(md) ? readFileSync(md, "utf8") : "";
writeFileSync(md, /<!-- cluster:start -->[\s\S]*<!-- cluster:end -->/.test(text) ? text.replace(/<!-- cluster:start -->[\s\S]*<!-- cluster:end -->/, section) : `${text.trimEnd()}\n\n${section}\n`);
process.stderr.write(section + "\n");
