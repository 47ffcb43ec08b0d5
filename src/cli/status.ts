import { existsSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { messageOf } from "../errors.js";
import { logInfo } from "../log/index.js";
import { Catalog, WorkerRegistry, readCatalogCache, readCheckpoint, readUnlessDeleting, type ProcessorRecord, type VersionStats, type VersionState, type WorkerSeen, type SchemaNote } from "../views/index.js";
import { replicaShortfalls, schemaWarning, type ReplicaShortfall, type SchemaWarning } from "../processors/index.js";
import type { CliContext } from "./context.js";
import type { CheckpointRates } from "./http/rates.js";
import { agreedHead } from "./http/snapshot.js";

/** One version's line in `kappa status`. */
export interface VersionStatus {
  version: number;
  state: VersionState;
  live: boolean;
  checkpoint: number | null;
  logHead: number | null;
  lag: number | null;
  eventsPerSec: number | null;
  etaSeconds: number | null;
  from: string;
  /** A frozen version: the last sequence it applies. */
  frozenAt?: number;
  codeHash: string;
  source?: string;
  sourceLive?: boolean;
  error?: string;
  statsAt?: string;
  /** The worker that writes this version (its lease holder, by its heartbeat; else the last one that claimed it). */
  writer?: string;
  /** Workers holding a replica of this version. */
  replicas?: string[];
  /** Schema versions its build met that its code has no upcaster for. */
  schemaWarnings?: SchemaWarning[];
}

/** One processor in `kappa status`. */
export interface ProcessorStatus {
  name: string;
  live: number | null;
  versions: VersionStatus[];
}

/** Everything `kappa status` shows; `nats` says whether the catalog was reachable. */
export interface StatusReport {
  nats: "ok" | "unreachable";
  natsError?: string;
  /** False when NATS is unreachable and there is no local copy of the catalog either: nothing to show. */
  catalogCopy?: boolean;
  logHead: number | null;
  /** Why the stream is not append-only, when it is used anyway (--allow-unsafe-log). */
  logUnsafe?: string[];
  /** Buckets and output streams with fewer replicas than --replicas (else the log) asks for. */
  replicaShortfalls?: ReplicaShortfall[];
  processors: ProcessorStatus[];
  /** Every worker that reported in the last hour (heartbeats), silent ones marked. */
  workers: WorkerSeen[];
}

/** Gathers status from the catalog and the workers' stats, or from the local copy when NATS is unreachable. */
export async function gatherStatus(ctx: CliContext, only?: string, rates?: CheckpointRates): Promise<StatusReport> {
  let records: ProcessorRecord[];
  let catalog: Catalog | undefined;
  let head: number | null = null;
  let unsafe: string[] = [];
  let natsError: string | undefined;
  let workers: WorkerSeen[] = [];
  let short: ReplicaShortfall[] = [];
  try {
    const nc = await ctx.nats({ timeoutMs: 1500 });
    catalog = await Catalog.open(nc, ctx.spec.stream);
    workers = await WorkerRegistry.open(nc, ctx.spec.stream).then((w) => w.list(), () => []);
    records = only ? [await catalog.require(only)] : await catalog.list();
    const info = await logInfo(await jetstreamManager(nc), ctx.spec.stream).catch(() => null);
    head = info?.lastSeq ?? null;
    unsafe = info?.unsafe ?? [];
    short = await replicaShortfalls(nc, ctx.spec).catch(() => []);
  } catch (err) {
    if ((err as { code?: string }).code === "NOT_FOUND") throw err;
    natsError = messageOf(err);
    catalog = undefined;
    const copy = readCatalogCache(ctx.dataDir.catalogCache);
    if (!copy) return { nats: "unreachable", natsError, catalogCopy: false, logHead: null, processors: [], workers: [] };
    records = copy.records.filter((r) => !only || r.name === only);
  }
  const byName = new Map(records.map((r) => [r.name, r]));
  const processors: ProcessorStatus[] = [];
  for (const rec of records) {
    const versions: VersionStatus[] = [];
    for (const v of Object.values(rec.versions).sort((a, b) => a.version - b.version)) {
      const stats: VersionStats | null = catalog && v.state !== "retired" ? await catalog.stats(rec.name, v.version).catch(() => null) : null;
      // The view file on this machine is fresher than the worker's last report; the head is at least it;
      // a frozen version owes nothing past its --until.
      const checkpoint = (v.state === "retired" ? null : localCheckpoint(ctx, rec.name, v.version)) ?? stats?.checkpoint ?? null;
      const logHead = agreedHead(v.source ? [stats?.logHead] : [head, stats?.logHead], checkpoint);
      const lag = checkpoint !== null && logHead !== null ? Math.max(0, Math.min(logHead, v.untilSeq ?? logHead) - checkpoint) : stats ? stats.pending : null;
      const stale = stats ? Date.now() - Date.parse(stats.at) > 5000 : false;
      // Across redraws (--watch), how fast the checkpoint moves: the rate while the worker's report is late, and the ETA.
      const moving = v.state === "retired" ? null : rates?.observe(`${rec.name}/${v.version}`, checkpoint) ?? null;
      const eps = stats && !stale ? stats.eventsPerSec : moving ?? (stats ? 0 : null);
      const etaRate = moving ?? eps;
      let up = v.source ? byName.get(v.source.processor) : undefined;
      if (v.source && !up && catalog) {
        up = (await catalog.get(v.source.processor).catch(() => null))?.record;
        if (up) byName.set(up.name, up);
      }
      versions.push({
        version: v.version,
        state: v.state,
        live: rec.live === v.version,
        checkpoint,
        logHead,
        lag: v.state === "retired" ? null : lag,
        eventsPerSec: eps,
        etaSeconds: v.state === "building" && etaRate && lag ? lag / etaRate : null,
        from: v.from,
        ...(v.untilSeq !== undefined ? { frozenAt: v.untilSeq } : {}),
        codeHash: v.codeHash.slice(0, 12),
        ...(v.source ? { source: `${v.source.processor} v${v.source.version}`, ...(up ? { sourceLive: up.live === v.source.version } : {}) } : {}),
        ...(v.error ? { error: `${v.error.seq ? `event ${v.error.seq} (${v.error.type}): ` : ""}${v.error.message}` } : {}),
        ...(stats ? { statsAt: stats.at } : {}),
        ...writerOf(workers, rec.name, v.version, v.writer?.worker),
        ...schemaOf(rec.name, v.state, stats?.schemaWarnings ?? v.schemaWarnings),
      });
    }
    processors.push({ name: rec.name, live: rec.live, versions });
  }
  const heads = processors.flatMap((p) => p.versions.filter((v) => !v.source).map((v) => v.logHead));
  return { nats: natsError ? "unreachable" : "ok", ...(natsError ? { natsError } : {}), logHead: agreedHead([head, ...heads], null), ...(unsafe.length ? { logUnsafe: unsafe } : {}), ...(short.length ? { replicaShortfalls: short } : {}), processors, workers };
}

/** The worker's latest notes (else the catch-up's), as warnings; counts are final once the version is past building. */
function schemaOf(name: string, state: VersionState, notes: SchemaNote[] | undefined): Pick<VersionStatus, "schemaWarnings"> {
  return notes?.length ? { schemaWarnings: notes.map((n) => schemaWarning(name, n, state !== "building")) } : {};
}

/** The checkpoint in this machine's file of a version, read under a reader lease (none for a file that is not here, or is being deleted). */
function localCheckpoint(ctx: CliContext, name: string, version: number): number | null {
  const file = ctx.dataDir.viewFile(name, version);
  if (!existsSync(file)) return null;
  return readUnlessDeleting(ctx.dataDir.viewsOf(name), version, () => readCheckpoint(file));
}

/** Who writes and who holds a version, from the heartbeats (a silent worker writes nothing). */
function writerOf(workers: WorkerSeen[], name: string, version: number, claimed: string | undefined): Pick<VersionStatus, "writer" | "replicas"> {
  const holders = workers.filter((w) => w.versions.some((h) => h.processor === name && h.version === version));
  const writer = holders.find((w) => !w.silent && w.versions.some((h) => h.processor === name && h.version === version && h.writer))?.worker ?? claimed;
  return { ...(writer ? { writer } : {}), ...(holders.length ? { replicas: holders.map((w) => w.worker) } : {}) };
}
