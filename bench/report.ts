/** Turns the figures into ratios against the issue's targets, bench/RESULTS.md and bench/results.json. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MachineFacts } from "./lib/machine.js";
import type { ProfileSummary } from "./lib/profile.js";
import type { ReadResult } from "./measure/read.js";
import type { ApplyResult, NaiveResult } from "./measure/apply.js";
import type { ReplayResult } from "./measure/replay.js";
import type { DeployResult } from "./measure/deploy.js";
import type { AppendResult } from "./measure/append.js";
import type { LatencyResult } from "./measure/latency.js";
import type { QueryResult } from "./measure/query.js";
import type { FiltersResult } from "./measure/filters.js";
import { fmt } from "./lib/stats.js";

export interface Results {
  startedAt: string;
  totalSeconds?: number;
  stageSeconds?: Record<string, number>;
  /** 1-minute load average when each stage started (other work on a shared machine skews rates). */
  stageLoad?: Record<string, number>;
  machine: MachineFacts;
  options: { events: number; naiveEvents: number; memoryEvents: number[]; memoryBase: number; latencySeconds: number; queryEvents: number };
  figures: {
    read?: ReadResult;
    apply?: ApplyResult;
    naive?: NaiveResult;
    replay?: ReplayResult;
    deploy?: DeployResult;
    replayProfile?: { events: number; replay: number; steady: number } & ProfileSummary;
    applyThreadProfile?: ProfileSummary;
    filters?: FiltersResult;
    append?: AppendResult;
    latency?: LatencyResult;
    query?: QueryResult;
    memory?: { baseEvents: number; basePeakMb: number; runs: { events: number; peakMb: number; replay: number; steady: number; firstLineMs?: number; firstProgressMs?: number; longestSilenceMs?: number }[] };
  };
  errors: Record<string, string>;
}

/** One target of the issue: the measured ratio or value, and whether it is met (null: not measured). */
export interface Ratio {
  name: string;
  target: string;
  text: string;
  ok: boolean | null;
}

const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const signed = (d: number) => `${d < 0 ? "−" : "+"}${Math.abs(d).toFixed(2)}`;

export function ratiosOf(r: Results): Ratio[] {
  const f = r.figures;
  const out: Ratio[] = [];
  const add = (name: string, target: string, have: boolean, text: () => string, ok: () => boolean) =>
    out.push({ name, target, text: have ? text() : "not measured", ok: have ? ok() : null });
  add("replay vs raw read", "≥ 1.0×", !!(f.replay && f.read), () => `${x(f.replay!.replay, f.read!.rawRead)} (${fmt(f.replay!.replay)} vs ${fmt(f.read!.rawRead)} events/s; steady-state ${x(f.replay!.steady, f.read!.rawRead)})`, () => f.replay!.replay >= f.read!.rawRead);
  add("replay vs naive", "≥ 20×", !!(f.replay && f.naive), () => `${x(f.replay!.replay, f.naive!.naive)} (${fmt(f.replay!.replay)} vs ${fmt(f.naive!.naive)} events/s, naive with Kappa's SQLite settings; ${x(f.replay!.replay, f.naive!.naiveDefaults)} vs a naive consumer on SQLite's defaults)`, () => f.replay!.replay >= 20 * f.naive!.naive);
  add("append (kappa append --file) vs raw loop", "≥ 0.8×", !!f.append, () => `${x(f.append!.cli, f.append!.raw)} (${fmt(f.append!.cli)} vs ${fmt(f.append!.raw)} events/s; without CLI start-up ${x(f.append!.cliWithoutStartup, f.append!.raw)}; appendEvents ${x(f.append!.library, f.append!.raw)})`, () => f.append!.cli >= 0.8 * f.append!.raw);
  const d = f.deploy;
  for (const name of ["orders_by_user", "keyed_upsert"]) {
    const runs = d?.runs.filter((r) => r.processor === name && r.flags.every((fl) => fl !== "--no-schema-check")) ?? [];
    const best = runs.length ? runs.reduce((a, b) => (b.rate > a.rate ? b : a)) : undefined;
    add(`kappa deploy --wait (${name}) vs raw read`, "≥ 0.9×", !!best, () => `${x(best!.rate, d!.rawRead)} (${fmt(best!.rate)} vs ${fmt(d!.rawRead)} events/s, start-up included: ${best!.seconds} s for ${fmt(best!.events)} events)`, () => best!.rate >= 0.9 * d!.rawRead);
  }
  const big = f.memory?.runs.at(-1);
  add(`deploy --wait on ${big ? fmt(big.events) : "10M"} events: first progress line`, "≤ 2 s", big?.firstLineMs !== undefined, () => `${(big!.firstLineMs! / 1000).toFixed(2)} s (first line with events applied: ${(big!.firstProgressMs! / 1000).toFixed(2)} s; longest silence ${(big!.longestSilenceMs! / 1000).toFixed(1)} s)`, () => big!.firstLineMs! <= 2000);
  const l5 = f.latency?.byRate["5000"];
  add("latency p99 at 5,000 events/s", "< 10 ms", !!l5, () => `${l5!.p99.toFixed(2)} ms (p50 ${l5!.p50.toFixed(2)}, max ${l5!.max.toFixed(2)})`, () => l5!.p99 < 10);
  const lr = f.latency?.duringRebuild;
  const lruns = f.latency?.rebuildRuns ?? (lr ? [lr] : []);
  add(`latency p99 at 5,000 events/s during a ${lr ? fmt(lr.rebuildEvents) : "1M"}-event rebuild, every run`, "< 10 ms", !!lr, () => `${lruns.map((x) => x.p99.toFixed(2)).join(", ")} ms in ${lruns.length} run${lruns.length === 1 ? "" : "s"} (worst: p50 ${lr!.p50.toFixed(2)}, max ${lr!.max.toFixed(2)}; the rebuild ${lr!.rebuildDone ? "had finished before the end of the measurement" : "ran throughout"})`, () => lruns.every((x) => x.p99 < 10));
  const q = f.query;
  add("query p99 during a rebuild vs idle", "≤ 1.2×", !!q, () => `${x(q!.duringRebuild.p99, q!.idle.p99)} (${q!.duringRebuild.p99.toFixed(2)} vs ${q!.idle.p99.toFixed(2)} ms)`, () => q!.duringRebuild.p99 <= 1.2 * q!.idle.p99);
  add("query p99 during promotions vs idle", "≤ +1 ms", !!q, () => `${signed(q!.duringPromote.p99 - q!.idle.p99)} ms (${q!.duringPromote.p99.toFixed(2)} vs ${q!.idle.p99.toFixed(2)} ms)`, () => q!.duringPromote.p99 - q!.idle.p99 <= 1);
  const m = f.memory;
  for (const run of m?.runs.length ? m.runs : [undefined]) {
    add(`peak RSS ${run ? fmt(run.events) : "5M"} vs ${m ? fmt(m.baseEvents) : "1M"} events`, "≤ 1.2×", !!run, () => `${x(run!.peakMb, m!.basePeakMb)} (${run!.peakMb} vs ${m!.basePeakMb} MB)`, () => run!.peakMb <= 1.2 * m!.basePeakMb);
  }
  return out;
}

/** The server's share of a latency: publish → JetStream's ack. */
function ackNote(a: { p50: number; p99: number } | undefined): string {
  return a ? `; of which publish → ack p50 ${a.p50.toFixed(2)} · p99 ${a.p99.toFixed(2)} ms` : "";
}

/** "worker 4.1 + server 3.2 = 7.3 µs" */
function cpu(c: Record<string, number>): string {
  const parts = Object.entries(c).filter(([k]) => k !== "total").map(([k, v]) => `${k} ${v.toFixed(1)}`);
  return `${parts.join(" + ")} = ${(c.total ?? 0).toFixed(1)} µs`;
}

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function profileTable(p: ProfileSummary): string {
  const areas = Object.entries(p.areas).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}%`).join(" · ");
  return `Busy ${fmt(p.busyMs)} ms — ${areas}\n\n` + table(["self %", "function", "where"], p.top.map((t) => [t.pct.toFixed(1), `\`${t.fn}\``, `\`${t.where}\``]));
}

const NOTES = [
  "Raw read, Kappa replay and both in-process append paths are the best of two runs (each run listed); the other figures come from one run.",
  "CPU/event is user+system time from /proc of the named processes over the run, in µs per event. Other work on the machine moves rates much more than it moves CPU per event; the load average at the start of each stage is in the table at the end.",
  "Raw read runs in the bench process; Kappa replay is a `kappa run` subprocess (orders_by_user deployed from the start, then `kappa replay` of v2 from the start), timed from the deploy call to the view's checkpoint at the head, polled every 5 ms.",
  "The naive baseline uses the SQLite settings of Kappa's views (WAL, synchronous=NORMAL), so the ratio measures batching, not durability settings; on SQLite's defaults (an fsync per event) it is far slower (see the figures).",
  "Latency is from the publish call (Kappa's PipelinedPublisher) to the first poll, on its own thread every ~0.2 ms, that finds the view's checkpoint at or past the event; the worker is a separate process.",
  "Queries are one at a time (named query top_users, n=10). \"During rebuilds\": three replays of the whole log, each after an idle window as long as the last rebuild took (the idle figure includes those windows). \"During promotions\": the live pointer swaps v1 ⇄ v2 every 250 ms; idle and promotion windows alternate twice so load from elsewhere hits both.",
  "Peak RSS is VmHWM of the worker process after a single replay. The largest memory run is deployed with `kappa deploy --wait` (the CLI as a subprocess, default flags), timed to its first progress line on stderr and to the longest gap between two lines.",
  "`kappa deploy --wait` (figure 9) is the CLI as a subprocess with the default flags, schema check included, timed from its spawn to its exit, against a raw read of the same server in the same stage. keyed_upsert (bench/processors/keyed_upsert.mjs) does one upsert per event into ~10,000 keys; orders_by_user one per order.placed (40% of events) into ~500.",
];

/** What limits each of this issue's targets, with this run's figures (the profiles and stage notes have the detail). */
function limits(r: Results): string[] {
  const f = r.figures;
  const out: string[] = [];
  const cores = r.machine.cores;
  if (f.deploy) {
    for (const run of f.deploy.runs.filter((x) => !x.flags.includes("--no-schema-check"))) {
      const ceiling = (cores * 1e6) / (run.cpuUs.total ?? Infinity);
      out.push(`**kappa deploy --wait, ${run.processor}${run.flags.length ? " " + run.flags.join(" ") : ""}: ${x(run.rate, f.deploy.rawRead)} the raw read.** ${(run.firstProgressMs / 1000).toFixed(2)} s of its ${run.seconds} s went before the first applied events showed (the CLI's start-up — node and tsx loading the TypeScript sources, about a second of CPU — bundling, registration, the worker's pick-up). The build itself costs ${cpu(run.cpuUs)} of CPU per event: on ${cores} cores that allows at most ${fmt(ceiling)} events/s with nothing else running, against ${fmt(f.deploy.rawRead)}/s for the raw read, which parses on one thread and leaves the other core to nats-server. The worker's share is the bulk reader thread's NATS parsing (the client's protocol parser and delivery-info parsing) and the apply thread's JSON.parse and handler.`);
    }
    const off = f.deploy.runs.find((x) => x.flags.includes("--no-schema-check"));
    const on = f.deploy.runs.filter((x) => x.processor === off?.processor && !x.flags.includes("--no-schema-check"));
    if (off && on.length) out.push(`**The schema check** costs nothing like a read: keyed_upsert with it ${on.map((x) => fmt(x.rate)).join(" and ")}/s, with --no-schema-check ${fmt(off.rate)}/s (CPU/event ${on.map((x) => (x.cpuUs.total ?? 0).toFixed(1)).join(", ")} vs ${(off.cpuUs.total ?? 0).toFixed(1)} µs).`);
  }
  const big = f.memory?.runs.at(-1);
  if (big?.firstLineMs !== undefined) out.push(`**First progress line on ${fmt(big.events)} events: ${(big.firstLineMs / 1000).toFixed(2)} s** after \`kappa deploy --wait\` was started, the longest silence between two lines ${(big.longestSilenceMs! / 1000).toFixed(1)} s. The first line comes from the log's head right after the version is registered, so what it waits for is the CLI's start-up and bundling; deploy no longer reads the log before it waits.`);
  if (f.append) out.push(`**kappa append --file: ${x(f.append.cli, f.append.raw)} a raw pipelined publish.** Every line is checked before the first publish (the promise that a bad line publishes nothing): JSON.parse and re-serialising each line's data, then the publish, one after the other, plus the CLI's ${f.append.cliStartupMs} ms start-up. Not changed by issue 22.`);
  const q = f.query;
  if (q) out.push(`**Query p99 during rebuilds: ${x(q.duringRebuild.p99, q.idle.p99)} idle** (p50 ${q.duringRebuild.p50.toFixed(2)} vs ${q.idle.p50.toFixed(2)} ms). A rebuild reads on the worker's bulk reader thread and applies on its own thread, both 10 nicer than the worker, so queries take the CPU first from both; what still runs at normal priority is nats-server sending the rebuild's messages (${f.deploy?.runs[0]?.cpuUs.server?.toFixed(1) ?? "~2"} µs per event) and the worker's main thread passing batches on.`);
  const lruns = f.latency?.rebuildRuns ?? [];
  if (lruns.length) out.push(`**Live append → visible during a rebuild:** p99 ${lruns.map((x) => x.p99.toFixed(2)).join(", ")} ms; of which publish → ack (nats-server storing the event while it serves the rebuild) p99 ${lruns.map((x) => x.ack.p99.toFixed(2)).join(", ")} ms.`);
  return out;
}

function markdown(r: Results): string {
  const f = r.figures;
  const m = r.machine;
  const rows: (string | number)[][] = [];
  const row = (what: string, value: string, note = "") => rows.push([what, value, note]);
  if (f.read) {
    row("1. raw read (ordered consumer, max_messages 10000, JSON.parse)", `${fmt(f.read.rawRead)} events/s`, `best of ${f.read.runs.map(fmt).join(", ")}; ${fmt(f.read.events)} events, no server-side filter (as Kappa's reader); CPU/event ${cpu(f.read.cpuUs)}`);
    row("   diagnostic: receive only", `${fmt(f.read.receiveOnly)} events/s`, "no parse");
    row("   diagnostic: + m.info, 2 headers, ISO time (what LogSubscription does)", `${fmt(f.read.kappaShaped)} events/s`, "");
    row("   diagnostic: LogSubscription, handler only parses", `${fmt(f.read.logSubscription)} events/s`, "Kappa's reader without the applier");
  }
  if (f.apply) {
    row("2. raw apply (from memory, pre-parsed, batches of " + f.apply.batch + ")", `${fmt(f.apply.rawApply)} events/s`, "SQLite WAL, synchronous=NORMAL");
    row("   raw apply incl. decode + JSON.parse", `${fmt(f.apply.rawApplyWithParse)} events/s`, "");
  }
  if (f.naive) {
    row("3. naive baseline (durable pull, 1 tx + 1 ack per event)", `${fmt(f.naive.naive)} events/s`, `${fmt(f.naive.events)} events; SQLite as Kappa's views (WAL, synchronous=NORMAL)`);
    row("   naive with SQLite defaults (rollback journal, synchronous=FULL)", `${fmt(f.naive.naiveDefaults)} events/s`, `${fmt(f.naive.naiveDefaultsEvents)} events; an fsync per event — not used for the ratio`);
  }
  if (f.replay) {
    row("4. Kappa replay, deploy → caught up", `${fmt(f.replay.replay)} events/s`, `best of ${f.replay.runs.map(fmt).join(", ")} (deploy v1, then \`kappa replay\` v2); ${f.replay.seconds} s for ${fmt(f.replay.events)} events; first batch after ${f.replay.startupMs} ms; CPU/event ${cpu(f.replay.cpuUs)}`);
    row("   Kappa replay, first batch → caught up", `${fmt(f.replay.steady)} events/s`, "");
  }
  if (f.deploy) {
    const d = f.deploy;
    row("9. raw read on the deploy stage's server", `${fmt(d.rawRead)} events/s`, `best of ${d.rawRuns.map(fmt).join(", ")} (before and after the deploys)`);
    for (const r of d.runs) {
      row(`   kappa deploy ${r.processor === "keyed_upsert" ? "keyed_upsert.mjs" : r.processor + ".ts"} --wait${r.flags.length ? " " + r.flags.join(" ") : ""}`, `${fmt(r.rate)} events/s`, `${r.seconds} s for ${fmt(r.events)} events, spawn to exit; first progress line after ${r.firstLineMs} ms, first with events applied after ${r.firstProgressMs} ms; CPU/event ${cpu(r.cpuUs)}`);
    }
  }
  if (f.replayProfile) row("   Kappa replay under --cpu-prof", `${fmt(f.replayProfile.replay)} events/s`, "profile below");
  if (f.append) {
    row("5. append: raw pipelined loop with Nats-Msg-Id", `${fmt(f.append.raw)} events/s`, `best of ${f.append.runs.raw.map(fmt).join(", ")}; CPU/event ${cpu(f.append.cpuUs.raw)}`);
    row("   append: appendEvents (library)", `${fmt(f.append.library)} events/s`, `best of ${f.append.runs.library.map(fmt).join(", ")}; CPU/event ${cpu(f.append.cpuUs.library)}`);
    row("   append: kappa append --file (subprocess, wall clock)", `${fmt(f.append.cli)} events/s`, `${fmt(f.append.cliWithoutStartup)}/s without the ${f.append.cliStartupMs} ms start-up`);
  }
  if (f.latency) {
    for (const [k, v] of Object.entries(f.latency.byRate)) {
      row(`6. latency append → row visible at ${fmt(Number(k))}/s`, `p50 ${v.p50.toFixed(2)} · p99 ${v.p99.toFixed(2)} · max ${v.max.toFixed(2)} ms`, `${fmt(v.n)} events, achieved ${fmt(v.achievedRate)}/s${ackNote(v.ack)}`);
    }
    const runs = f.latency.rebuildRuns ?? (f.latency.duringRebuild ? [f.latency.duringRebuild] : []);
    runs.forEach((d, i) => row(`   … at 5,000/s during a rebuild of ${fmt(d.rebuildEvents)} events${runs.length > 1 ? `, run ${i + 1}` : ""}`, `p50 ${d.p50.toFixed(2)} · p99 ${d.p99.toFixed(2)} · max ${d.max.toFixed(2)} ms`, `${fmt(d.n)} events, achieved ${fmt(d.achievedRate)}/s; rebuild ${d.rebuildDone ? "finished within the window" : "still running at the end"}${ackNote(d.ack)}`));
  }
  if (f.query) {
    const q = f.query;
    row("7. query, idle", `p50 ${q.idle.p50.toFixed(2)} · p99 ${q.idle.p99.toFixed(2)} ms`, `${fmt(q.idle.n)} queries; ${q.via}`);
    row("   query during rebuilds (v2, v3, v4)", `p50 ${q.duringRebuild.p50.toFixed(2)} · p99 ${q.duringRebuild.p99.toFixed(2)} ms`, `${fmt(q.duringRebuild.n)} queries`);
    row("   query during promotions", `p50 ${q.duringPromote.p50.toFixed(2)} · p99 ${q.duringPromote.p99.toFixed(2)} ms`, `${fmt(q.duringPromote.n)} queries, ${q.duringPromote.promotions} swaps; answers by version ${JSON.stringify(q.duringPromote.answersByVersion)}`);
  }
  if (f.replay && !f.memory) row("8. worker peak RSS, replay of " + fmt(f.replay.events), `${f.replay.peakRssMb} MB`, `idle ${f.replay.idleRssMb} MB, at catch-up ${f.replay.rssAtEndMb} MB`);
  if (f.memory) {
    const same = f.replay?.events === f.memory.baseEvents;
    row(`8. worker peak RSS, ${fmt(f.memory.baseEvents)} events`, `${f.memory.basePeakMb} MB`, same ? `the replay of figure 4 (idle ${f.replay!.idleRssMb} MB, at catch-up ${f.replay!.rssAtEndMb} MB)` : "");
    for (const run of f.memory.runs) row(`8. worker peak RSS, ${fmt(run.events)} events`, `${run.peakMb} MB`, `replay ${fmt(run.replay)}/s (steady ${fmt(run.steady)}/s)${run.firstLineMs !== undefined ? `; by \`kappa deploy --wait\`: first progress line after ${run.firstLineMs} ms, first with events applied after ${run.firstProgressMs} ms, longest gap between lines ${run.longestSilenceMs} ms` : ""}`);
  }
  const ratios = ratiosOf(r);
  const parts = [
    "# Benchmark results",
    "",
    `Measured by \`npm run bench\` (bench/run.ts) on ${r.startedAt.slice(0, 10)}; the whole run took ${r.totalSeconds ?? "?"} s. Every stage starts its own nats-server on a fresh store; the worker, \`kappa serve\` and \`kappa append\` run as subprocesses.`,
    "",
    "## Machine",
    "",
    table(["", ""], [["CPU", m.cpu], ["cores", m.cores], ["RAM", `${m.ramGb} GB`], ["kernel", m.kernel], ["node", m.node], ["nats-server", m.natsServer], ["@nats-io client", m.natsClient], ["better-sqlite3", m.betterSqlite3]]),
    "",
    `Options: ${Object.entries(r.options).map(([k, v]) => `${k}=${Array.isArray(v) ? v.map(fmt).join(" and ") : fmt(v)}`).join(", ")}. Events are the orders example (seed 1), ~58-byte JSON payloads; the processor is examples/orders/orders_by_user.ts.`,
    "",
    "## Targets",
    "",
    table(["target", "goal", "measured", ""], ratios.map((q) => [q.name, q.target, q.text, q.ok === null ? "–" : q.ok ? "✓" : "✗"])),
    "",
    "## Figures",
    "",
    table(["figure", "value", "notes"], rows),
  ];
  const why = limits(r);
  if (why.length) parts.push("", "## What limits each target (issue 22)", "", ...why.map((n) => `- ${n}`));
  parts.push("", "## How to read this", "", ...NOTES.map((n) => `- ${n}`));
  if (f.replayProfile) parts.push("", "## Profile: Kappa replay, the worker's NATS thread (`node --cpu-prof`, top self time)", "", profileTable(f.replayProfile));
  if (f.applyThreadProfile) parts.push("", "## Profile: Kappa replay, the version's apply thread", "", profileTable(f.applyThreadProfile));
  if (f.filters) {
    const t = f.filters;
    parts.push("", `## The 2.9 work-arounds on nats-server ${t.server}`, "", "A. Readers without a server-side filter: one event type read from sequence 2, filtered in the client vs `filter_subjects` on an ordered consumer (matching events/s, consumer creation to the last matching event).", "",
      table(["type", "share", "client-side filter", "server-side filter", "server / client"], Object.entries(t.byType).map(([k, v]) => [k, `${((100 * v.matching) / v.total).toFixed(1)}%`, `${fmt(v.unfiltered)}/s`, `${fmt(v.filtered)}/s`, x(v.filtered, v.unfiltered)])),
      "", `B. One output stream per version: ${fmt(t.outputs.perVersion)} events of one version read from its own stream vs with a filter from one stream holding ${t.outputs.versions} versions interleaved.`, "",
      table(["own stream", "shared stream, filtered", "shared / own"], [[`${fmt(t.outputs.ownStream)}/s`, `${fmt(t.outputs.sharedFiltered)}/s`, x(t.outputs.sharedFiltered, t.outputs.ownStream)]]));
  }
  if (f.append?.profile) parts.push("", "## Profile: `kappa append --file` (top self time)", "", profileTable(f.append.profile));
  if (r.stageSeconds) {
    const names = Object.keys(r.stageSeconds);
    parts.push("", "## Stages", "", table(["", ...names], [["seconds", ...Object.values(r.stageSeconds)], ["load average at start", ...names.map((n) => r.stageLoad?.[n] ?? "")]]));
  }
  if (Object.keys(r.errors).length) parts.push("", "## Failed stages", "", ...Object.entries(r.errors).map(([k, v]) => `- **${k}**: \`${v.split("\n")[0]}\``));
  return parts.join("\n") + "\n";
}

/** Writes results.json, and RESULTS.md when `final`. */
export function writeReport(dir: string, r: Results, final: boolean): void {
  writeFileSync(join(dir, "results.json"), JSON.stringify({ ...r, ratios: ratiosOf(r) }, null, 2) + "\n");
  if (final) writeFileSync(join(dir, "RESULTS.md"), markdown(r));
}
