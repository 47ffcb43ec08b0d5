import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import { KappaError, NotFoundError, messageOf } from "../errors.js";
import { replicasFor } from "../log/index.js";
import type { ProcessorRecord, VersionRecord, VersionStats, HistoryEntry } from "./catalogTypes.js";
import { validateProcessorName } from "./paths.js";
import { notDeployed } from "./suggest.js";
import { followKv, parseProcessorRecord, type Follower } from "./catalogWatch.js";

export * from "./catalogTypes.js";

/** Two writers changed the same processor at once and this one lost. */
export class CatalogConflictError extends KappaError {
  constructor(message: string, hint = "look at `kappa status` and try again") {
    super("CATALOG_CONFLICT", message, { hint });
  }
}

/** The catalog bucket's name for a stream. */
export function catalogBucket(stream: string): string {
  return `${stream}_catalog`;
}

const PROC = "proc.";
const STATS = "stats.";

/** The catalog: processors, their versions and the live pointer, in a JetStream KV bucket; changes are compare-and-set. */
export class Catalog {
  private constructor(readonly kv: KV) {}

  /** Opens (creating if needed, with `replicas` or the stream's own) the catalog bucket of a stream. */
  static async open(nc: NatsConnection, stream: string, replicas?: number): Promise<Catalog> {
    try {
      const kv = await new Kvm(nc).create(catalogBucket(stream), { history: 1, replicas: await replicasFor(nc, stream, replicas) });
      return new Catalog(kv);
    } catch (err) {
      throw new KappaError("CATALOG_UNAVAILABLE", `cannot open the catalog bucket ${catalogBucket(stream)}: ${messageOf(err)}`, {
        hint: "check that JetStream is enabled and reachable (`kappa log info`)",
        cause: err,
      });
    }
  }

  /** One processor's record with its KV revision, or null. */
  async get(name: string): Promise<{ record: ProcessorRecord; revision: number } | null> {
    const e = await this.kv.get(PROC + validateProcessorName(name));
    if (!e || e.operation !== "PUT" || e.length === 0) return null;
    return { record: parseProcessorRecord(e, name), revision: e.revision };
  }

  /** One processor's record; a NotFoundError with a hint when it does not exist. */
  async require(name: string): Promise<ProcessorRecord> {
    const r = await this.get(name);
    if (!r) throw notDeployed(name, await this.names().catch(() => []));
    return r.record;
  }

  /** The names of every processor, sorted. */
  async names(): Promise<string[]> {
    const names: string[] = [];
    for await (const k of await this.kv.keys(PROC + "*")) names.push(k.slice(PROC.length));
    return names.sort();
  }

  /** Every processor record (a malformed one is left out: the watch reports it). */
  async list(): Promise<ProcessorRecord[]> {
    return (await this.entries()).map((e) => e.record);
  }

  /**
   * Changes one processor with compare-and-set, retrying when someone else wrote in between.
   * `change` gets a copy and may throw to refuse; it returns the new record (or null to create nothing).
   * A change that leaves the record as it was writes nothing.
   */
  async mutate(name: string, change: (current: ProcessorRecord | null, attempt: number) => ProcessorRecord): Promise<ProcessorRecord> {
    const key = PROC + validateProcessorName(name);
    for (let attempt = 0; attempt < 50; attempt++) {
      const cur = await this.get(name);
      const next = change(cur ? structuredClone(cur.record) : null, attempt);
      const data = JSON.stringify(next);
      // Nothing changed (a transition already made, a writer already recorded): no new revision, so every
      // watcher is spared a wake-up and a revision still means that something changed.
      if (cur && data === JSON.stringify(cur.record)) return next;
      try {
        if (cur) await this.kv.update(key, data, cur.revision);
        else await this.kv.create(key, data);
        return next;
      } catch (err) {
        if (!isRevisionConflict(err)) throw new KappaError("CATALOG_WRITE_FAILED", `cannot write the catalog: ${messageOf(err)}`, { cause: err });
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
      }
    }
    throw new CatalogConflictError(`catalog entry of ${name} kept changing; gave up after 50 attempts`);
  }

  /** Records what a worker measured for one version. */
  async putStats(name: string, version: number, stats: VersionStats): Promise<void> {
    await this.kv.put(`${STATS}${name}.${version}`, JSON.stringify(stats));
  }

  /** What the worker last reported for one version, or null. */
  async stats(name: string, version: number): Promise<VersionStats | null> {
    const e = await this.kv.get(`${STATS}${name}.${version}`);
    if (!e || e.operation !== "PUT" || e.length === 0) return null;
    return e.json<VersionStats>();
  }

  /**
   * Calls `onChange` with every processor record (and its revision) now and whenever one changes, until
   * stopped. Survives what a long-running process meets: a malformed value is reported and skipped, and a
   * watch that ends (NATS restarted, connection lost) is reported and started again.
   */
  watch(onChange: (record: ProcessorRecord, revision: number) => void, onTrouble: (message: string) => void = () => {}): Follower {
    return followKv(this.kv, PROC + ">", (e) => {
      if (e.operation !== "PUT" || e.length === 0) return;
      onChange(parseProcessorRecord(e, e.key.slice(PROC.length)), e.revision);
    }, onTrouble);
  }

  /** Calls `onChange` with every version's stats now and whenever they change (null: deleted); as resilient as watch. */
  watchStats(onChange: (name: string, version: number, stats: VersionStats | null) => void, onTrouble: (message: string) => void = () => {}): Follower {
    return followKv(this.kv, STATS + ">", (e) => {
      const m = /^(.+)\.(\d+)$/.exec(e.key.slice(STATS.length));
      if (!m) return;
      onChange(m[1]!, Number(m[2]), e.operation === "PUT" && e.length > 0 ? e.json<VersionStats>() : null);
    }, onTrouble);
  }

  /** Every processor record with its KV revision. */
  async entries(): Promise<{ record: ProcessorRecord; revision: number }[]> {
    const names: string[] = [];
    for await (const k of await this.kv.keys(PROC + "*")) names.push(k.slice(PROC.length));
    const out: { record: ProcessorRecord; revision: number }[] = [];
    for (const n of names.sort()) {
      const r = await this.get(n).catch((err: unknown) => {
        if ((err as { code?: string }).code === "CATALOG_CORRUPT" || (err as { code?: string }).code === "BAD_NAME") return null; // the watch reports it
        throw err;
      });
      if (r) out.push(r);
    }
    return out;
  }
}

function isRevisionConflict(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(e?.message ?? "");
}

/** A new, empty processor record. */
export function newProcessorRecord(name: string): ProcessorRecord {
  return { name, live: null, previousLive: [], nextVersion: 1, versions: {}, history: [] };
}

/** Appends a history entry stamped with the current time. */
export function addHistory(rec: ProcessorRecord, entry: Omit<HistoryEntry, "at">): void {
  rec.history.push({ at: new Date().toISOString(), ...entry });
  if (rec.history.length > 1000) rec.history.splice(0, rec.history.length - 1000);
}

/** One version of a record, or a NotFoundError. */
export function versionOf(rec: ProcessorRecord, version: number): VersionRecord {
  const v = rec.versions[String(version)];
  if (!v) throw new NotFoundError(`${rec.name} has no version ${version}`, { hint: `versions: ${Object.keys(rec.versions).join(", ") || "none"} — see \`kappa status ${rec.name}\`` });
  return v;
}
