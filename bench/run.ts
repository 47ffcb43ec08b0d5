/**
 * `npm run bench`: measures Kappa's replay, append, latency, queries and memory against the limits of
 * the same machine in the same run, then writes bench/RESULTS.md and bench/results.json.
 * Options: --events N, --naive-events N, --memory-events N[,N…], --memory-base N, --latency-seconds S,
 * --query-events N, --skip a,b / --only a,b (stages: read apply naive replay deploy profile append latency query memory filters).
 */
import { parseArgs } from "node:util";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { corpusFile, removeScratch, scratch } from "./lib/env.js";
import { machineFacts } from "./lib/machine.js";
import { summarizeProfile } from "./lib/profile.js";
import { load1 } from "./lib/cpu.js";
import { measureRead } from "./measure/read.js";
import { measureApply, measureNaive } from "./measure/apply.js";
import { measureReplay } from "./measure/replay.js";
import { measureDeploy } from "./measure/deploy.js";
import { measureAppend } from "./measure/append.js";
import { measureLatency } from "./measure/latency.js";
import { measureQueries } from "./measure/query.js";
import { measureFilters } from "./measure/filters.js";
import { writeReport, ratiosOf, type Results } from "./report.js";

const STAGES = ["read", "apply", "naive", "replay", "deploy", "profile", "append", "latency", "query", "memory", "filters"] as const;
type Stage = (typeof STAGES)[number];

const { values: o } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    "naive-events": { type: "string", default: "50000" },
    "memory-events": { type: "string", default: "5000000,10000000" },
    "memory-base": { type: "string", default: "1000000" },
    "latency-seconds": { type: "string", default: "5" },
    "query-events": { type: "string", default: "200000" },
    skip: { type: "string", default: "" },
    only: { type: "string", default: "" },
    out: { type: "string", default: new URL(".", import.meta.url).pathname },
  },
});

const count = (k: string, s: string): number => {
  const v = Number(s.replace(/_/g, ""));
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer, got ${s}`);
  return v;
};
const num = (k: keyof typeof o): number => count(k, String(o[k]));
const events = num("events");
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const only = list(o.only!);
const skip = list(o.skip!);
for (const s of [...only, ...skip]) if (!STAGES.includes(s as Stage)) throw new Error(`unknown stage ${s}; stages: ${STAGES.join(", ")}`);
const enabled = (s: Stage) => (only.length === 0 || only.includes(s)) && !skip.includes(s);

const results: Results = {
  startedAt: new Date().toISOString(),
  machine: machineFacts(),
  options: { events, naiveEvents: num("naive-events"), memoryEvents: String(o["memory-events"]).split(",").map((s) => count("memory-events", s.trim())), memoryBase: num("memory-base"), latencySeconds: num("latency-seconds"), queryEvents: num("query-events") },
  figures: {},
  errors: {},
};
const t0 = performance.now();
// Ctrl-C: the exit hook (lib/scope.ts) kills the servers and subprocesses by PID and removes scratch files
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

async function stage(name: Stage, fn: () => Promise<void>): Promise<void> {
  if (!enabled(name)) return;
  const s0 = performance.now();
  results.stageLoad = { ...results.stageLoad, [name]: load1() };
  process.stderr.write(`\n▶ ${name} (load average ${load1()})\n`);
  try {
    await fn();
  } catch (err) {
    results.errors[name] = (err as Error).stack ?? String(err);
    process.stderr.write(`✗ ${name} failed: ${(err as Error).message}\n`);
  }
  results.stageSeconds = { ...results.stageSeconds, [name]: Math.round(performance.now() - s0) / 1000 };
  results.totalSeconds = Math.round(performance.now() - t0) / 1000;
  writeReport(o.out!, results, false);
}

const f = results.figures;
try {
  const needCorpus = STAGES.some((s) => s !== "naive" && s !== "latency" && s !== "query" && s !== "memory" && s !== "filters" && enabled(s));
  const corpus = needCorpus ? await corpusFile(events) : "";
  await stage("read", async () => void (f.read = await measureRead(corpus, events)));
  await stage("apply", async () => void (f.apply = await measureApply(corpus, events)));
  await stage("naive", async () => {
    const n = Math.min(events, results.options.naiveEvents);
    f.naive = await measureNaive(await corpusFile(n), n);
  });
  await stage("replay", async () => void (f.replay = await measureReplay(corpus, events, { runs: 2 })));
  await stage("deploy", async () => void (f.deploy = await measureDeploy(corpus, events)));
  await stage("profile", async () => {
    const dir = mkdtempSync(join(scratch, "prof-"));
    const r = await measureReplay(corpus, events, { label: "replay --cpu-prof", profileDir: dir });
    f.replayProfile = { events, replay: r.replay, steady: r.steady, ...summarizeProfile(r.profile!, 20, 700) };
    if (r.threadProfile) f.applyThreadProfile = summarizeProfile(r.threadProfile, 20, 700);
  });
  await stage("append", async () => void (f.append = await measureAppend(corpus, events)));
  await stage("latency", async () => void (f.latency = await measureLatency(results.options.latencySeconds, events)));
  await stage("query", async () => {
    const n = Math.min(events, results.options.queryEvents);
    f.query = await measureQueries(await corpusFile(n), n);
  });
  await stage("memory", async () => {
    const base = results.options.memoryBase;
    const small = f.replay && f.replay.events === base ? f.replay : await measureReplay(await corpusFile(base), base, { label: "memory base" });
    f.memory = { baseEvents: base, basePeakMb: small.peakRssMb, runs: [] };
    const largest = Math.max(...results.options.memoryEvents);
    for (const big of results.options.memoryEvents) {
      // The largest log is deployed as a user does (`kappa deploy --wait`): how soon it says something, and whether it ever goes quiet.
      const large = await measureReplay(await corpusFile(big), big, { label: `memory ${big.toLocaleString("en-US")}`, viaCli: big === largest });
      f.memory.runs.push({ events: big, peakMb: large.peakRssMb, replay: large.replay, steady: large.steady, ...(large.cli ? { firstLineMs: large.cli.firstLineMs, firstProgressMs: large.cli.firstProgressMs, longestSilenceMs: large.cli.longestSilenceMs } : {}) });
      writeReport(o.out!, results, false);
    }
  });
  await stage("filters", async () => {
    const n = Math.min(events, 1_000_000);
    f.filters = await measureFilters(await corpusFile(n), n);
  });
} finally {
  results.totalSeconds = Math.round(performance.now() - t0) / 1000;
  writeReport(o.out!, results, true);
  removeScratch();
}
for (const r of ratiosOf(results)) process.stdout.write(`${r.ok === null ? "?" : r.ok ? "✓" : "✗"} ${r.name}: ${r.text}\n`);
process.stdout.write(`bench took ${results.totalSeconds} s; wrote ${join(o.out!, "RESULTS.md")} and results.json\n`);
