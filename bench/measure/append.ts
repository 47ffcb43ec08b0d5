/**
 * 5. Append: Kappa's append path against a raw pipelined publish loop with the same Nats-Msg-Id headers,
 *    each into a fresh stream. Library (`appendEvents`) and raw loop run twice, interleaved, best of two;
 *    then `kappa append --file` as a subprocess (wall clock, and without the CLI's start-up), and once
 *    more under --cpu-prof for the profile.
 */
import { createWriteStream, mkdtempSync, readdirSync, statSync } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { appendEvents, ensureStream, type OutgoingEvent } from "../../src/log/index.js";
import { SPEC, scratch, startServer, connect, loadCorpus, readCorpus } from "../lib/env.js";
import { rawPublish } from "../lib/rawPublish.js";
import { spawnKappa } from "../lib/kappaProc.js";
import { summarizeProfile, type ProfileSummary } from "../lib/profile.js";
import { withScope } from "../lib/scope.js";
import { Progress } from "../lib/progress.js";
import { rate } from "../lib/stats.js";
import { CpuMeter, perEvent } from "../lib/cpu.js";

export interface AppendResult {
  events: number;
  /** events/s */
  raw: number;
  library: number;
  cli: number;
  /** events/s of `kappa append --file` without the process start-up (`kappa --help` time subtracted). */
  cliWithoutStartup: number;
  cliStartupMs: number;
  runs: { raw: number[]; library: number[] };
  /** µs of CPU per event (client, nats-server, total) of the last raw and library runs. */
  cpuUs: { raw: Record<string, number>; library: Record<string, number> };
  profile?: ProfileSummary;
}

async function timedAppend(kind: "raw" | "library", events: OutgoingEvent[]): Promise<{ rate: number; cpu: Record<string, number> }> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    await ensureStream(nc, SPEC);
    const bar = new Progress(`append ${kind}`, events.length);
    const meter = new CpuMeter({ client: process.pid, server: server.pid });
    const t0 = performance.now();
    if (kind === "raw") {
      await rawPublish(nc, SPEC.prefix, events, { onProgress: (n) => bar.update(n) });
    } else {
      const s = await appendEvents(nc, SPEC, events, { onAck: (n) => (n & 0x3fff) === 0 && bar.update(n) });
      if (s.stored !== events.length) throw new Error(`appendEvents stored ${s.stored} of ${events.length}`);
    }
    const ms = performance.now() - t0;
    const cpu = perEvent(meter.stop(), events.length);
    bar.update(events.length);
    bar.stop();
    return { rate: rate(events.length, ms), cpu };
  });
}

/** Writes the corpus as `{type, id, data}` envelopes, the format `kappa append --file` reads. */
async function envelopeFile(corpus: string): Promise<string> {
  const path = join(scratch, "append.ndjson");
  const out = createWriteStream(path);
  let buf: string[] = [];
  for (const e of readCorpus(corpus)) {
    buf.push(`{"type":${JSON.stringify(e.type)},"id":${JSON.stringify(e.id)},"data":${e.json}}`);
    if (buf.length === 10_000) {
      if (!out.write(buf.join("\n") + "\n")) await once(out, "drain");
      buf = [];
    }
  }
  out.end(buf.length ? buf.join("\n") + "\n" : "");
  await once(out, "finish");
  return path;
}

/** Runs `kappa append --file` on a fresh server; returns its wall-clock ms (and a profile when asked). */
async function cliAppend(file: string, count: number, profileDir?: string): Promise<number> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const t0 = performance.now();
    const p = spawnKappa(scope, ["--nats", server.url, "--json", "append", "--file", file], profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []);
    const code = await p.exited;
    const ms = performance.now() - t0;
    if (code !== 0) throw new Error(`kappa append exited with ${code}: ${p.lines.slice(-5).join(" | ")}`);
    const summary = JSON.parse(p.stdout) as { stored?: number };
    if (summary.stored !== count) throw new Error(`kappa append stored ${summary.stored} of ${count}`);
    return ms;
  });
}

/** Start-up of the CLI alone: `kappa --help`. */
async function cliStartupMs(): Promise<number> {
  return withScope(async (scope) => {
    const t0 = performance.now();
    await spawnKappa(scope, ["--help"]).exited;
    return performance.now() - t0;
  });
}

/** tsx's loader thread writes a profile of its own: the main thread's is the largest. */
function largest(dir: string, files: string[]): string {
  return files.map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
}

export async function measureAppend(corpus: string, count: number): Promise<AppendResult> {
  const events = loadCorpus(corpus);
  const runs = { raw: [] as number[], library: [] as number[] };
  const cpuUs = { raw: {}, library: {} } as AppendResult["cpuUs"];
  for (let i = 0; i < 2; i++) {
    for (const kind of ["library", "raw"] as const) {
      const r = await timedAppend(kind, events);
      runs[kind].push(r.rate);
      cpuUs[kind] = r.cpu;
    }
  }
  events.length = 0;
  const file = await envelopeFile(corpus);
  process.stderr.write("  kappa append --file (subprocess)…\n");
  const startup = await cliStartupMs();
  const cliMs = await cliAppend(file, count);
  process.stderr.write("  kappa append --file under --cpu-prof…\n");
  const dir = mkdtempSync(join(scratch, "prof-append-"));
  await cliAppend(file, count, dir);
  const prof = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  return {
    events: count,
    raw: Math.max(...runs.raw),
    library: Math.max(...runs.library),
    cli: rate(count, cliMs),
    cliWithoutStartup: rate(count, cliMs - startup),
    cliStartupMs: Math.round(startup),
    runs,
    cpuUs,
    ...(prof.length ? { profile: summarizeProfile(largest(dir, prof)) } : {}),
  };
}
