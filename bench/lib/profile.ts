/** Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time. */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One row of the self-time table. */
export interface HotFunction {
  fn: string;
  where: string;
  /** Share of busy (non-idle) time, percent. */
  pct: number;
  ms: number;
}

export interface ProfileSummary {
  busyMs: number;
  top: HotFunction[];
  /** Busy time by area: NATS client, SQLite, Kappa, GC, … (percent). */
  areas: Record<string, number>;
}

function shortUrl(url: string): string {
  const i = url.indexOf("node_modules/");
  if (i >= 0) return url.slice(i + "node_modules/".length);
  const s = url.indexOf("/src/");
  if (s >= 0) return url.slice(s + 1);
  return url.replace(/^file:\/\//, "").split("/").slice(-2).join("/");
}

function area(fn: string, url: string): string {
  if (fn === "(garbage collector)") return "gc";
  if (fn === "(program)") return "program (native, unattributed)";
  if (url.includes("@nats-io")) return "nats client";
  if (url.includes("better-sqlite3")) return "better-sqlite3 (JS side)";
  if (url.includes("/src/") || url.includes("kappa-code") || url.includes("/code/")) return "kappa + processor";
  if (url.startsWith("node:") || url === "") return "node core / native";
  return "other";
}

/**
 * Summarizes a profile: idle time excluded, top `n` functions by self time. With `afterIdleMs`, samples
 * count only after the first idle stretch that long (skips process start-up before the measured work).
 */
export function summarizeProfile(path: string, n = 15, afterIdleMs = 0): ProfileSummary {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const idle = new Set(p.nodes.filter((x) => x.callFrame.functionName === "(idle)").map((x) => x.id));
  const self = new Map<number, number>();
  let counting = afterIdleMs === 0;
  let idleRun = 0;
  let busyRun = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    if (!counting) {
      // timers firing inside an idle stretch (a few ms of work) do not end it
      if (idle.has(id)) (busyRun = 0), (idleRun += ms);
      else if ((busyRun += ms) > 5) idleRun = 0;
      if (idleRun >= afterIdleMs) counting = true;
      continue;
    }
    self.set(id, (self.get(id) ?? 0) + ms);
  }
  const agg = new Map<string, HotFunction & { area: string }>();
  let busy = 0;
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === "(idle)") continue;
    busy += ms;
    const name = f.functionName || "(anonymous)";
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : "";
    const key = `${name} ${where}`;
    const a = agg.get(key) ?? { fn: name, where, pct: 0, ms: 0, area: area(name, f.url) };
    a.ms += ms;
    agg.set(key, a);
  }
  const areas: Record<string, number> = {};
  for (const a of agg.values()) areas[a.area] = (areas[a.area] ?? 0) + a.ms;
  for (const k of Object.keys(areas)) areas[k] = Math.round((areas[k]! / busy) * 1000) / 10;
  const top = [...agg.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map(({ fn, where, ms }) => ({ fn, where, ms: Math.round(ms), pct: Math.round((ms / busy) * 1000) / 10 }));
  return { busyMs: Math.round(busy), top, areas };
}
