import type { DataDir, ProcessorRecord, VersionState } from "../../views/index.js";
import type { CheckpointReader } from "./checkpoints.js";
import type { LiveCatalog, NatsHealth } from "./liveCatalog.js";

/** One version as the HTTP API and the status page show it. */
export interface VersionView {
  version: number;
  state: VersionState;
  live: boolean;
  /** Last applied sequence, read from the view file (fresher than the worker's stats). */
  checkpoint: number | null;
  /** Events the worker applied to this version since it (the worker) started, as it reports them. */
  eventsApplied: number | null;
  logHead: number | null;
  lag: number | null;
  eventsPerSec: number | null;
  caughtUp: boolean;
  from: string;
  codeHash: string;
  createdAt: string;
  caughtUpAt?: string;
  source?: string;
  error?: string;
  deadLetters?: number;
  walBytes?: number;
  trouble?: string;
  /** When the worker last reported; absent when no worker reports on this version. */
  statsAt?: string;
  /** True when the worker has not reported for a while (stopped, or NATS down). */
  stale?: boolean;
}

/** One processor with its versions. */
export interface ProcessorView {
  name: string;
  live: number | null;
  versions: VersionView[];
  /** Named queries of the live version (or the newest one). */
  queries: Record<string, string>;
}

/** Everything the server knows about every view, at one instant. */
export interface ViewsSnapshot {
  at: string;
  nats: NatsHealth;
  logHead: number | null;
  processors: ProcessorView[];
}

const STALE_MS = 5000;

/** Builds one processor's view from its record, the worker's stats and the view files' checkpoints. */
export function processorView(rec: ProcessorRecord, catalog: LiveCatalog, checkpoints: CheckpointReader, dataDir: DataDir): ProcessorView {
  const head = catalog.logHead;
  const now = Date.now();
  const versions: VersionView[] = [];
  for (const v of Object.values(rec.versions).sort((a, b) => a.version - b.version)) {
    const retired = v.state === "retired";
    const stats = retired ? undefined : catalog.stats(rec.name, v.version);
    const cp = retired ? null : checkpoints.read(dataDir.viewFile(rec.name, v.version));
    const checkpoint = cp ?? stats?.checkpoint ?? null;
    const logHead = v.source ? stats?.logHead ?? null : head ?? stats?.logHead ?? null;
    const stale = stats ? now - Date.parse(stats.at) > STALE_MS : undefined;
    const lag = retired ? null : stats && !stale ? stats.pending : checkpoint !== null && logHead !== null ? Math.max(0, logHead - checkpoint) : null;
    versions.push({
      version: v.version,
      state: v.state,
      live: rec.live === v.version,
      checkpoint,
      eventsApplied: stats?.applied ?? null,
      logHead,
      lag,
      eventsPerSec: stats ? (stale ? 0 : stats.eventsPerSec) : null,
      caughtUp: v.state === "live" || v.state === "caught-up" || stats?.caughtUp === true,
      from: v.from,
      codeHash: v.codeHash.slice(0, 12),
      createdAt: v.createdAt,
      ...(v.caughtUpAt ? { caughtUpAt: v.caughtUpAt } : {}),
      ...(v.source ? { source: `${v.source.processor} v${v.source.version}` } : {}),
      ...(v.error ? { error: `${v.error.seq ? `event ${v.error.seq} (${v.error.type}): ` : ""}${v.error.message}` } : {}),
      ...(stats?.deadLetters !== undefined ? { deadLetters: stats.deadLetters } : {}),
      ...(stats?.walBytes !== undefined ? { walBytes: stats.walBytes } : {}),
      ...(stats?.trouble ? { trouble: stats.trouble } : {}),
      ...(stats ? { statsAt: stats.at } : {}),
      ...(stale ? { stale: true } : {}),
    });
  }
  const codeOf = rec.versions[String(rec.live ?? "")] ?? Object.values(rec.versions).at(-1);
  return { name: rec.name, live: rec.live, versions, queries: codeOf?.queries ?? {} };
}

/** Every processor's view, plus NATS health and the log head. */
export function snapshot(catalog: LiveCatalog, checkpoints: CheckpointReader, dataDir: DataDir): ViewsSnapshot {
  return {
    at: new Date().toISOString(),
    nats: catalog.health(),
    logHead: catalog.logHead,
    processors: catalog.list().map((r) => processorView(r, catalog, checkpoints, dataDir)),
  };
}
