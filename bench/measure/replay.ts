/**
 * 4. Kappa replay end to end: a `kappa run` worker in its own process, orders_by_user deployed from the
 *    start of a filled stream; timed from the deploy call until the view's checkpoint reaches the head.
 * 8. The same run gives the worker's peak RSS (VmHWM); run it at 1M and 5M events for the memory figure.
 * With a profile directory the worker runs under `node --cpu-prof`.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deployModule, replayProcessor } from "../../src/processors/index.js";
import { DataDir, readCheckpoint } from "../../src/views/index.js";
import { SPEC, scratch, startServer, connect, fill } from "../lib/env.js";
import { spawnKappa, RssSampler, type KappaProcess } from "../lib/kappaProc.js";
import { withScope, type Scope } from "../lib/scope.js";
import { Progress } from "../lib/progress.js";
import { rate, sleep } from "../lib/stats.js";
import { CpuMeter, perEvent } from "../lib/cpu.js";
import { spawnDeploy, type DeployLines } from "./deploy.js";

export const PROCESSOR = fileURLToPath(new URL("../../examples/orders/orders_by_user.ts", import.meta.url));

export interface ReplayResult {
  events: number;
  /** events/s from the deploy call to the checkpoint at the head (bundling, catalog, consumer setup included). */
  replay: number;
  /** events/s from the first committed batch to the head: the steady replay rate. */
  steady: number;
  seconds: number;
  runs: number[];
  /** µs of CPU per event of the best run: worker, nats-server, total. */
  cpuUs: Record<string, number>;
  /** ms from the deploy call until the first batch was committed. */
  startupMs: number;
  /** The worker's VmHWM (MB) and its RSS at catch-up. */
  peakRssMb: number;
  rssAtEndMb: number;
  /** Baseline RSS of the idle worker before the deploy (MB). */
  idleRssMb: number;
  profile?: string;
  /** The version's apply thread's profile (node writes one per thread). */
  threadProfile?: string;
  /** With `viaCli`: what `kappa deploy --wait` printed, when. */
  cli?: DeployLines;
}

/** A worker subprocess on a data dir of its own; resolves once it runs. */
export async function startWorker(scope: Scope, url: string, nodeArgs: string[] = []): Promise<{ proc: KappaProcess; dataDir: DataDir }> {
  const dataDir = new DataDir(mkdtempSync(join(scratch, "data-")));
  // BENCH_WORKER_NODE_ARGS (e.g. "--trace-gc") adds node flags to every worker, for investigations
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const proc = spawnKappa(scope, ["--nats", url, "--data-dir", dataDir.root, "--json", "run"], [...extra, ...nodeArgs]);
  await proc.waitForLine(/worker .*running/);
  return { proc, dataDir };
}

/** Polls a view file's checkpoint until it reaches `seq`; returns when the first batch landed and when it finished. */
export async function waitForCheckpoint(path: string, seq: number, label: string, timeoutMs: number): Promise<{ firstAt: number; firstSeq: number; doneAt: number }> {
  const bar = new Progress(label, seq);
  const deadline = Date.now() + timeoutMs;
  let firstAt = 0;
  let firstSeq = 0;
  for (;;) {
    const cp = readCheckpoint(path) ?? 0;
    const now = performance.now();
    if (cp > 0 && !firstAt) {
      firstAt = now;
      firstSeq = cp;
    }
    bar.update(cp);
    if (cp >= seq) {
      bar.stop();
      return { firstAt, firstSeq, doneAt: now };
    }
    if (Date.now() > deadline) {
      bar.stop();
      throw new Error(`${label}: checkpoint at ${cp} of ${seq} after ${timeoutMs} ms`);
    }
    await sleep(5);
  }
}

/** One timed replay: `start()` registers the version; timed until its checkpoint reaches `last`. */
async function timedRun(start: () => Promise<{ processor: string; version: number }>, dataDir: DataDir, last: number, label: string, pids: Record<string, number>) {
  const meter = new CpuMeter(pids);
  const t0 = performance.now();
  const v = await start();
  const w = await waitForCheckpoint(dataDir.viewFile(v.processor, v.version), last, label, Math.max(120_000, last / 10));
  return { ms: w.doneAt - t0, steady: rate(last - w.firstSeq, w.doneAt - w.firstAt), startupMs: Math.round(w.firstAt - t0), cpu: meter.stop() };
}

/**
 * Fills a fresh server with `events` events and replays them through a worker subprocess: a deploy of v1,
 * then (with runs = 2) `kappa replay` of v2 from the start on the same server; the best run counts.
 * Peak RSS is taken after the first run, so it is the figure of a single replay.
 */
export async function measureReplay(corpus: string, events: number, opts: { label?: string; profileDir?: string; runs?: 1 | 2; viaCli?: boolean } = {}): Promise<ReplayResult> {
  const label = opts.label ?? "kappa replay";
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    const last = await fill(nc, corpus, events, `fill ${label}`);
    const nodeArgs = opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [];
    const { proc, dataDir } = await startWorker(scope, server.url, nodeArgs);
    const rss = new RssSampler(proc.pid, 100);
    await sleep(1000); // an idle gap that also marks where the replay starts in a profile
    const idleRssMb = Math.round(rss.maxRssKb / 1024);
    const pids = { worker: proc.pid, server: server.pid };
    let cli: Promise<DeployLines> | undefined;
    const runs = [await timedRun(async () => {
      if (opts.viaCli) {
        // As a user deploys: the CLI, default flags, waiting with its progress lines.
        const p = spawnDeploy(scope, server.url, dataDir.root, PROCESSOR);
        cli = p.done;
        await p.proc.waitForLine(/v1 registered/, 120_000);
        return { processor: "orders_by_user", version: 1 };
      }
      const d = await deployModule(nc, SPEC, PROCESSOR, { from: "start" });
      return { processor: d.processor, version: d.version.version };
    }, dataDir, last, label, pids)];
    const cliLines = cli ? await cli : undefined;
    const mem = rss.stop();
    const rssAtEnd = rss.samples.at(-1)?.rssKb ?? 0;
    if (opts.runs === 2) {
      runs.push(await timedRun(async () => {
        const d = await replayProcessor(nc, SPEC, "orders_by_user", { from: "start" });
        return { processor: d.processor, version: d.version.version };
      }, dataDir, last, `${label} (v2)`, pids));
    }
    await proc.stop();
    let profile: string | undefined;
    let threadProfile: string | undefined;
    if (opts.profileDir) {
      // One profile per thread: tsx's loader thread, the NATS thread, each version's apply thread (its code
      // is the bundled apply-thread-*.mjs). The largest of each kind is the one that replayed.
      const files = readdirSync(opts.profileDir).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(opts.profileDir!, f)).sort((a, b) => statSync(b).size - statSync(a).size);
      const isApply = (f: string) => readFileSync(f, "utf8").includes("apply-thread-");
      threadProfile = files.find(isApply);
      profile = files.find((f) => !isApply(f));
    }
    const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    return {
      events,
      replay: rate(events, best.ms),
      runs: runs.map((r) => rate(events, r.ms)),
      steady: best.steady,
      seconds: Math.round(best.ms) / 1000,
      startupMs: best.startupMs,
      cpuUs: perEvent(best.cpu, events),
      peakRssMb: mem.peakMb,
      rssAtEndMb: Math.round(rssAtEnd / 1024),
      idleRssMb,
      ...(profile ? { profile } : {}),
      ...(threadProfile ? { threadProfile } : {}),
      ...(cliLines ? { cli: cliLines } : {}),
    };
  });
}
