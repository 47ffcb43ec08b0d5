/**
 * 6. Latency: append → row visible. A worker subprocess follows orders_by_user (live, caught up on an empty
 *    stream); the bench publishes at a steady rate with Kappa's PipelinedPublisher while a thread polls the
 *    view's checkpoint every ~0.2 ms. Latency of an event = first time the checkpoint covered its sequence
 *    − the time its publish was issued. One warm-up second per rate is not counted.
 *    Then the same at 5,000 events/s while a second version rebuilds from the start of a log of
 *    `rebuildEvents` events (filled before the live version started): do rebuilds slow the live version?
 */
import { Worker as Thread } from "node:worker_threads";
import { deployModule, replayProcessor } from "../../src/processors/index.js";
import { Catalog, readCheckpoint, retire } from "../../src/views/index.js";
import { rawPublish } from "../lib/rawPublish.js";
import { ensureStream, PipelinedPublisher, type OutgoingEvent } from "../../src/log/index.js";
import { SPEC, startServer, connect, corpusFile, loadCorpus } from "../lib/env.js";
import { withScope } from "../lib/scope.js";
import { latency, sleep, type Latency } from "../lib/stats.js";
import { PROCESSOR, startWorker, waitForCheckpoint } from "./replay.js";

export interface LatencyResult {
  seconds: number;
  /** ms, keyed by events/s */
  byRate: Record<string, Latency & { achievedRate: number; ack: Latency }>;
  /** At 5,000 events/s during the rebuild, the worst of REBUILD_RUNS (by p99); `rebuildDone` says whether the rebuild finished before the measurement did. */
  duringRebuild?: RebuildLatency;
  /** Every run during a rebuild (the target holds only if it holds in each). */
  rebuildRuns?: RebuildLatency[];
}

type RebuildLatency = Latency & { achievedRate: number; ack: Latency; rebuildEvents: number; rebuildDone: boolean };

/** Separate rebuilds (each a replay of the whole log) during which live latency is measured. */
const REBUILD_RUNS = 3;

const RATES = [1000, 5000];
const REBUILD_RATE = 5000;
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Publishes `events` at `perSec`; resolves with the send time of every stream sequence. */
async function paced(pub: PipelinedPublisher, events: OutgoingEvent[], perSec: number): Promise<{ sentAt: Map<number, number>; ackMs: number[]; achieved: number }> {
  const enc = new TextEncoder();
  const sentAt = new Map<number, number>();
  const ackMs: number[] = [];
  const acks: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < events.length) {
    const due = Math.min(events.length, Math.floor(((performance.now() - t0) / 1000) * perSec) + 1);
    for (; sent < due; sent++) {
      const e = events[sent]!;
      const at = now();
      acks.push(pub.publishNow(`${SPEC.prefix}.${e.type}`, enc.encode(e.json), e.id).then((r) => {
        sentAt.set(r.seq, at);
        ackMs.push(now() - at);
      }));
    }
    await sleep(1);
  }
  const achieved = Math.round(events.length / ((performance.now() - t0) / 1000));
  await Promise.all(acks);
  return { sentAt, ackMs, achieved };
}

export async function measureLatency(seconds: number, rebuildEvents = 0): Promise<LatencyResult> {
  const need = RATES.reduce((s, r) => s + r * (seconds + 1), 0) + (rebuildEvents ? REBUILD_RUNS * REBUILD_RATE * (seconds + 1) : 0);
  const everything = loadCorpus(await corpusFile(need + rebuildEvents));
  const history = everything.slice(0, rebuildEvents);
  const all = everything.slice(rebuildEvents);
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    await ensureStream(nc, SPEC);
    if (history.length) await rawPublish(nc, SPEC.prefix, history);
    const { proc, dataDir } = await startWorker(scope, server.url);
    const dep = await deployModule(nc, SPEC, PROCESSOR, { from: "start" });
    await proc.waitForLine(/caught up/);
    const file = dataDir.viewFile(dep.processor, dep.version.version);
    const stop = new SharedArrayBuffer(4);
    const seen: [number, number][] = [];
    const thread = new Thread(new URL("../lib/pollThread.mjs", import.meta.url), { workerData: { path: file, stop, intervalMs: 0.2 } });
    const ended = new Promise<void>((resolve, reject) => {
      thread.on("message", (m: [number, number] | { polls: number }) => (Array.isArray(m) ? seen.push(m) : resolve()));
      thread.on("error", reject);
    });
    scope.defer("poll thread", async () => {
      Atomics.store(new Int32Array(stop), 0, 1);
      await ended.catch(() => {});
    });
    const pub = new PipelinedPublisher(nc);
    scope.defer("publisher", () => pub.close());
    const byRate: LatencyResult["byRate"] = {};
    let offset = 0;
    const measure = async (perSec: number): Promise<Latency & { achievedRate: number; ack: Latency }> => {
      const n = perSec * (seconds + 1);
      const { sentAt, ackMs, achieved } = await paced(pub, all.slice(offset, offset + n), perSec);
      offset += n;
      const lastSeq = Math.max(...sentAt.keys());
      const deadline = Date.now() + 10_000;
      while ((seen.at(-1)?.[0] ?? 0) < lastSeq && Date.now() < deadline) await sleep(5);
      const seqs = [...sentAt.keys()].sort((a, b) => a - b).slice(perSec); // drop the warm-up second
      const lat: number[] = [];
      let j = 0;
      for (const seq of seqs) {
        while (j < seen.length && seen[j]![0] < seq) j++;
        if (j === seen.length) throw new Error(`event ${seq} never became visible (checkpoint ${seen.at(-1)?.[0]})`);
        lat.push(seen[j]![1] - sentAt.get(seq)!);
      }
      // The server's part: publish → JetStream's ack (stored), warm-up second dropped.
      const ack = latency(ackMs.slice(perSec));
      if (process.env.BENCH_DEBUG) {
        const t0 = sentAt.get(seqs[0]!)!;
        const slow = lat.map((l, k) => [l, sentAt.get(seqs[k]!)! - t0] as const).filter(([l]) => l > 2.5);
        process.stderr.write(`    ${slow.length} events over 2.5 ms, at (ms since start: latency) ${slow.map(([l, t]) => `${t.toFixed(0)}:${l.toFixed(1)}`).join(" ")}\n`);
      }
      return { ...latency(lat), achievedRate: achieved, ack };
    };
    for (const perSec of RATES) {
      process.stderr.write(`  ${perSec} events/s for ${seconds + 1} s (1 s warm-up)…\n`);
      byRate[String(perSec)] = await measure(perSec);
    }
    const rebuildRuns: RebuildLatency[] = [];
    const catalog = await Catalog.open(nc, SPEC.stream);
    for (let run = 0; history.length && run < REBUILD_RUNS; run++) {
      const r = await replayProcessor(nc, SPEC, dep.processor, { from: "start" });
      const rebuilt = dataDir.viewFile(r.processor, r.version.version);
      process.stderr.write(`  ${REBUILD_RATE} events/s for ${seconds + 1} s while v${r.version.version} rebuilds ${history.length} events (run ${run + 1}/${REBUILD_RUNS})…\n`);
      const m = await measure(REBUILD_RATE);
      rebuildRuns.push({ ...m, rebuildEvents: history.length, rebuildDone: (readCheckpoint(rebuilt) ?? 0) >= history.length });
      // The next rebuild starts beside the live version alone: this one finishes and is retired.
      await waitForCheckpoint(rebuilt, (readCheckpoint(file) ?? 0), `v${r.version.version} done`, 300_000);
      await retire(catalog, r.processor, r.version.version);
    }
    const duringRebuild = rebuildRuns.length ? rebuildRuns.reduce((a, b) => (b.p99 > a.p99 ? b : a)) : undefined;
    return { seconds, byRate, ...(duringRebuild ? { duringRebuild, rebuildRuns } : {}) };
  });
}
