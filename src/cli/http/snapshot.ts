import type { DataDir, ProcessorRecord, VersionState } from "../../views/index.js";
import type { CheckpointReader } from "./checkpoints.js";
import type { LiveCatalog, NatsHealth } from "./liveCatalog.js";
import type { CheckpointRates } from "./rates.js";
import type { WriterWatch } from "./writers.js";

/** One version as the HTTP API and the status page show it. */
export interface VersionView {
  version: number;
  state: VersionState;
  live: boolean;
  /** A frozen version (`--until`): the last sequence it applies; it never follows the log. */
  frozenAt?: number;
  /** Last applied sequence, read from the view file (fresher than the worker's stats). */
  checkpoint: number | null;
  /** Events the worker applied to this version since it (the worker) started, as it reports them. */
  eventsApplied: number | null;
  logHead: number | null;
  lag: number | null;
  eventsPerSec: number | null;
  /** Seconds until a building version catches up at its current rate; null when not building or not moving. */
  etaSeconds: number | null;
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
  /** The worker holding this version's writer lease (it publishes its emits and records its transitions). */
  writer?: string;
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
  /** Workers holding writer leases, with what each writes (absent before any worker ran). */
  workers?: { worker: string; writes: string[] }[];
}

const STALE_MS = 5000;

/**
 * The log head as of a checkpoint read: heads and view files are read at different instants, and a
 * checkpoint is a sequence the log holds, so the head is at least every one of these readings.
 */
export function agreedHead(heads: readonly (number | null | undefined)[], checkpoint: number | null): number | null {
  let h: number | null = null;
  for (const x of heads) if (typeof x === "number") h = Math.max(h ?? 0, x);
  return h === null ? null : Math.max(h, checkpoint ?? 0);
}

/** Builds one processor's view from its record, the worker's stats and the view files' checkpoints. */
export function processorView(rec: ProcessorRecord, catalog: LiveCatalog, checkpoints: CheckpointReader, dataDir: DataDir, rates?: CheckpointRates, writers?: WriterWatch): ProcessorView {
  const head = catalog.logHead;
  const now = Date.now();
  const versions: VersionView[] = [];
  for (const v of Object.values(rec.versions).sort((a, b) => a.version - b.version)) {
    const retired = v.state === "retired";
    const stats = retired ? undefined : catalog.stats(rec.name, v.version);
    const cp = retired ? null : checkpoints.read(dataDir, rec.name, v.version);
    const checkpoint = cp ?? stats?.checkpoint ?? null;
    const stale = stats ? now - Date.parse(stats.at) > STALE_MS : undefined;
    const logHead = agreedHead(v.source ? [stats?.logHead] : [head, stats?.logHead], checkpoint);
    const lag = retired ? null : checkpoint !== null && logHead !== null ? Math.max(0, Math.min(logHead, v.untilSeq ?? logHead) - checkpoint) : stats && !stale ? stats.pending : null;
    const moving = retired ? null : rates?.observe(`${rec.name}/${v.version}`, checkpoint, now) ?? null;
    // The worker's rate while its reports are fresh; else how fast the file's checkpoint moves, seen from here.
    const eventsPerSec = stats && !stale ? stats.eventsPerSec : moving ?? (stats ? 0 : null);
    const etaRate = moving ?? eventsPerSec;
    versions.push({
      version: v.version,
      state: v.state,
      live: rec.live === v.version,
      ...(v.untilSeq !== undefined ? { frozenAt: v.untilSeq } : {}),
      checkpoint,
      eventsApplied: stats?.applied ?? null,
      logHead,
      lag,
      eventsPerSec,
      etaSeconds: v.state === "building" && etaRate && lag ? lag / etaRate : null,
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
      ...(!retired && writers?.writer(rec.name, v.version) ? { writer: writers.writer(rec.name, v.version)! } : {}),
      ...(stale ? { stale: true } : {}),
    });
  }
  const codeOf = rec.versions[String(rec.live ?? "")] ?? Object.values(rec.versions).at(-1);
  return { name: rec.name, live: rec.live, versions, queries: codeOf?.queries ?? {} };
}

/** Every processor's view, plus NATS health and the log head. */
export function snapshot(catalog: LiveCatalog, checkpoints: CheckpointReader, dataDir: DataDir, rates?: CheckpointRates, writers?: WriterWatch): ViewsSnapshot {
  const records = catalog.list();
  rates?.prune(new Set(records.flatMap((r) => Object.keys(r.versions).map((v) => `${r.name}/${v}`))));
  const processors = records.map((r) => processorView(r, catalog, checkpoints, dataDir, rates, writers));
  const workers = writers?.workers() ?? [];
  const heads = processors.flatMap((p) => p.versions.filter((v) => !v.source).map((v) => v.logHead));
  return { at: new Date().toISOString(), nats: catalog.health(), logHead: agreedHead([catalog.logHead, ...heads], null), processors, ...(workers.length ? { workers } : {}) };
}
