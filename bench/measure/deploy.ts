/**
 * 9. `kappa deploy <module> --wait` as a user runs it: the CLI as a subprocess with the default flags
 *    (the schema check included), timed from its spawn to its exit, so start-up, bundling, the worker's
 *    pick-up and the wait's last poll all count. Beside it, on the same server and in the same stage, the
 *    raw ordered-consumer read+parse (figure 1's loop), before and after the deploys.
 *    Two workloads: orders_by_user (one upsert per order.placed, 40% of events, into ~500 keys) and
 *    bench/processors/keyed_upsert.mjs (one upsert per event into ~10,000 keys); the latter once more with
 *    --no-schema-check, to show what the check costs. Each run also gives the time to the first
 *    progress line, and to the first one that counts applied events.
 */
import { fileURLToPath } from "node:url";
import { jetstream } from "@nats-io/jetstream";
import { startServer, connect, fill } from "../lib/env.js";
import { spawnKappa, type KappaProcess } from "../lib/kappaProc.js";
import { withScope, type Scope } from "../lib/scope.js";
import { rate } from "../lib/stats.js";
import { CpuMeter, perEvent } from "../lib/cpu.js";
import { readOnce } from "./read.js";
import { startWorker, PROCESSOR } from "./replay.js";

export const KEYED = fileURLToPath(new URL("../processors/keyed_upsert.mjs", import.meta.url));

/** One `kappa deploy --wait`. */
export interface DeployRun {
  processor: string;
  flags: string[];
  events: number;
  /** Spawn to exit. */
  seconds: number;
  rate: number;
  /** Spawn to the first progress line ("N/M events (P%)"), and to the first one with N > 0. */
  firstLineMs: number;
  firstProgressMs: number;
  /** µs of CPU per event: worker, nats-server, total. */
  cpuUs: Record<string, number>;
}

export interface DeployResult {
  events: number;
  /** Raw read+parse on the same server: before and after the deploys; the best is the reference. */
  rawRead: number;
  rawRuns: number[];
  runs: DeployRun[];
}

const PROGRESS = /: ([\d,]+)\/[\d,]+ events \(\d+%\)/;

/** What a `kappa deploy --wait` printed, when: its first progress line, the first with events applied, the longest gap between two lines. */
export interface DeployLines {
  ms: number;
  firstLineMs: number;
  firstProgressMs: number;
  longestSilenceMs: number;
}

/** Starts `kappa deploy <module> --wait`; `done` resolves when it exited 0, with its timings from the spawn. */
export function spawnDeploy(scope: Scope, url: string, dataDir: string, module: string, flags: string[] = []): { proc: KappaProcess; done: Promise<DeployLines> } {
  const t0 = performance.now();
  const proc = spawnKappa(scope, ["--nats", url, "--data-dir", dataDir, "deploy", module, "--wait", ...flags]);
  const done = proc.exited.then((code) => {
    const end = performance.now();
    if (code !== 0) throw new Error(`kappa deploy ${module} ${flags.join(" ")} exited ${code}:\n${proc.lines.slice(-10).join("\n")}`);
    const at = (re: RegExp) => {
      const i = proc.lines.findIndex((l) => re.test(l));
      return i < 0 ? NaN : Math.round(proc.lineTimes[i]! - t0);
    };
    const times = [t0, ...proc.lineTimes, end];
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    return { ms: end - t0, firstLineMs: at(PROGRESS), firstProgressMs: at(/: [1-9][\d,]*\/[\d,]+ events \(\d+%\)/), longestSilenceMs: Math.round(gap) };
  });
  return { proc, done };
}

/** Runs one `kappa deploy --wait` against a worker's server; resolves with its timings. */
export async function cliDeploy(scope: Scope, url: string, dataDir: string, module: string, flags: string[], events: number, pids: Record<string, number>): Promise<DeployRun> {
  // The command's own CPU is not counted: it has exited when the meter is read.
  const meter = new CpuMeter(pids);
  const { proc, done } = spawnDeploy(scope, url, dataDir, module, flags);
  const r = await done;
  const cpu = meter.stop();
  const name = /^(\S+): v\d+ registered/m.exec(proc.stdout)?.[1] ?? module;
  return { processor: name, flags, events, seconds: Math.round(r.ms) / 1000, rate: rate(events, r.ms), firstLineMs: r.firstLineMs, firstProgressMs: r.firstProgressMs, cpuUs: perEvent(cpu, events) };
}

/** The deploy stage on a fresh server filled with the corpus. */
export async function measureDeploy(corpus: string, events: number): Promise<DeployResult> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    const last = await fill(nc, corpus, events, "fill deploy");
    const js = jetstream(nc);
    const raw = [await readOnce(js, last, "parse", "raw read")];
    const { proc, dataDir } = await startWorker(scope, server.url);
    const pids = { worker: proc.pid, server: server.pid };
    const runs: DeployRun[] = [];
    // Each a new version: `--from 1` is another offset than `start`, so the same code is not "unchanged".
    runs.push(await cliDeploy(scope, server.url, dataDir.root, PROCESSOR, [], last, pids));
    runs.push(await cliDeploy(scope, server.url, dataDir.root, KEYED, [], last, pids));
    runs.push(await cliDeploy(scope, server.url, dataDir.root, KEYED, ["--from", "1"], last, pids));
    runs.push(await cliDeploy(scope, server.url, dataDir.root, KEYED, ["--from", "2", "--no-schema-check"], last - 1, pids));
    await proc.stop();
    raw.push(await readOnce(js, last, "parse", "raw read"));
    return { events: last, rawRead: rate(last, Math.min(...raw)), rawRuns: raw.map((ms) => rate(last, ms)), runs };
  });
}
