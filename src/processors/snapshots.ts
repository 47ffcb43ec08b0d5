import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore, type ObjectInfo } from "@nats-io/obj";
import { KappaError, messageOf } from "../errors.js";
import { replicasFor } from "../log/index.js";
import { runSnapshotJob } from "./snapshotJob.js";

/** The snapshot bucket's name for a stream. */
export function snapshotBucket(stream: string): string {
  return `${stream}_snapshots`;
}

/** Snapshots kept per version unless told otherwise. */
export const DEFAULT_SNAPSHOT_KEEP = 3;

/** One stored snapshot of a view version. */
export interface SnapshotInfo {
  name: string;
  processor: string;
  version: number;
  /** The checkpoint inside the copy: it holds every event's effect up to here, and none after. */
  checkpoint: number;
  codeHash: string;
  bytes: number;
  createdAt: string;
  /** SHA-256 of the file as it was taken (absent on snapshots from before Kappa recorded it). */
  sha256?: string;
  /** The worker that took it. */
  takenBy?: string;
  /** Set once a replica found it unusable: why, when and who. Nobody restores it again. */
  bad?: { reason: string; at: string; by: string };
}

/** Where a restore may look and how it reports what it skipped. */
export interface RestoreOptions {
  /** Only snapshots at or below this checkpoint (a frozen version's end). */
  maxCheckpoint?: number;
  /** Who marks a bad snapshot (this worker's id). */
  worker?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

const prefixOf = (processor: string, version: number) => `${processor}/v${version}/`;

function infoOf(o: ObjectInfo): SnapshotInfo | null {
  const m = o.metadata ?? {};
  if (o.deleted || !m.checkpoint || !m.processor) return null;
  return {
    name: o.name, processor: m.processor, version: Number(m.version), checkpoint: Number(m.checkpoint), codeHash: m.code_hash ?? "", bytes: o.size, createdAt: m.created_at ?? o.mtime,
    ...(m.sha256 ? { sha256: m.sha256 } : {}),
    ...(m.taken_by ? { takenBy: m.taken_by } : {}),
    ...(m.bad ? { bad: { reason: m.bad, at: m.bad_at ?? "", by: m.bad_by ?? "" } } : {}),
  };
}

/**
 * Consistent copies of view files in the object store: `VACUUM INTO` reads one snapshot of the file (the
 * checkpoint row and the rows it covers, together), so a copy can seed a new replica that replays only the
 * tail. Copies and checks run in a child process (snapshotJob.ts), never on the worker's main thread.
 */
export class SnapshotStore {
  private constructor(readonly os: ObjectStore) {}

  /** Opens (creating if needed) the snapshot bucket, replicated like the log. */
  static async open(nc: NatsConnection, stream: string, replicas?: number): Promise<SnapshotStore> {
    try {
      return new SnapshotStore(await new Objm(nc).create(snapshotBucket(stream), { replicas: await replicasFor(nc, stream, replicas) }));
    } catch (err) {
      throw new KappaError("SNAPSHOTS_UNAVAILABLE", `cannot open the snapshot bucket ${snapshotBucket(stream)}: ${messageOf(err)}`, { hint: "check that JetStream is enabled and reachable (`kappa log info`)", cause: err });
    }
  }

  /**
   * Copies a live view file consistently and stores it with its checkpoint, code hash and SHA-256 (Kappa's
   * own, checked on restore beside the object store's digest); returns what was stored. Old snapshots
   * beyond `keep` are deleted.
   */
  async take(viewFile: string, processor: string, version: number, keep = DEFAULT_SNAPSHOT_KEEP, opts: { worker?: string; signal?: AbortSignal } = {}): Promise<SnapshotInfo> {
    const tmp = `${viewFile}.snapshot-${process.pid}-${Date.now()}`;
    try {
      const c = await runSnapshotJob({ op: "copy", src: viewFile, dst: tmp }, opts.signal);
      const createdAt = new Date().toISOString();
      const name = `${prefixOf(processor, version)}${String(c.checkpoint).padStart(12, "0")}`;
      const codeHash = c.meta.code_hash ?? "";
      const metadata = { processor, version: String(version), checkpoint: String(c.checkpoint), code_hash: codeHash, created_at: createdAt, sha256: c.sha256, ...(opts.worker ? { taken_by: opts.worker } : {}) };
      await this.os.put({ name, metadata }, Readable.toWeb(createReadStream(tmp)) as ReadableStream<Uint8Array>);
      await this.prune(processor, version, keep);
      return { name, processor, version, checkpoint: c.checkpoint, codeHash, bytes: c.bytes, createdAt, sha256: c.sha256, ...(opts.worker ? { takenBy: opts.worker } : {}) };
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Every snapshot of one version, newest (highest checkpoint) first, bad ones included (marked). */
  async list(processor: string, version: number): Promise<SnapshotInfo[]> {
    const all = await this.os.list();
    return all
      .filter((o) => o.name.startsWith(prefixOf(processor, version)))
      .map(infoOf)
      .filter((s): s is SnapshotInfo => s !== null)
      .sort((a, b) => b.checkpoint - a.checkpoint);
  }

  /** Every snapshot of every version of a processor, by version then newest first. */
  async listAll(processor: string): Promise<SnapshotInfo[]> {
    const all = await this.os.list();
    return all
      .filter((o) => o.name.startsWith(`${processor}/v`))
      .map(infoOf)
      .filter((s): s is SnapshotInfo => s !== null && s.processor === processor)
      .sort((a, b) => a.version - b.version || b.checkpoint - a.checkpoint);
  }

  /**
   * Deletes all but the newest `keep` good snapshots of a version, and the bad ones below the newest good one
   * (a bad one above it stays, marked, so listings show why it is passed over).
   */
  async prune(processor: string, version: number, keep: number): Promise<number> {
    const all = await this.list(processor, version);
    const good = all.filter((s) => !s.bad);
    const newestGood = good[0]?.checkpoint ?? Infinity;
    const old = [...good.slice(Math.max(1, keep)), ...all.filter((s) => s.bad && s.checkpoint < newestGood)];
    for (const s of old) await this.os.delete(s.name).catch(() => {});
    return old.length;
  }

  /** Marks a snapshot unusable, with why: every replica then passes it over. */
  async markBad(name: string, reason: string, by = ""): Promise<void> {
    const info = await this.os.info(name);
    if (!info || info.deleted) return;
    await this.os.update(name, { metadata: { ...info.metadata, bad: reason.slice(0, 500), bad_at: new Date().toISOString(), bad_by: by } });
  }

  /**
   * Restores the newest usable snapshot of a version built by `codeHash` to `viewFile` (which must not exist
   * yet). Each candidate is downloaded beside it and checked before it is renamed into place (so a crash
   * leaves either no file or a whole one): Kappa's SHA-256 from when it was taken, `PRAGMA quick_check`, and
   * what the file says it is (processor, version, code, checkpoint). One that fails is marked bad and the next
   * older one is tried; null when none is usable (the caller replays the log).
   */
  async restore(viewFile: string, processor: string, version: number, codeHash: string, opts: RestoreOptions = {}): Promise<SnapshotInfo | null> {
    const candidates = (await this.list(processor, version)).filter((x) => x.codeHash === codeHash && x.checkpoint <= (opts.maxCheckpoint ?? Infinity) && !x.bad);
    mkdirSync(dirname(viewFile), { recursive: true });
    const tmp = `${viewFile}.restore-${process.pid}`;
    try {
      for (const s of candidates) {
        const problem = await this.#fetchChecked(s, tmp, codeHash, opts.signal);
        if (problem === undefined) {
          renameSync(tmp, viewFile);
          return s;
        }
        rmSync(tmp, { force: true });
        if (problem === null) continue; // deleted meanwhile (pruned)
        await this.markBad(s.name, problem, opts.worker).catch((err: unknown) => opts.log?.(`${processor}/${version}: cannot mark snapshot ${s.name} bad: ${messageOf(err)}`));
        opts.log?.(`${processor}/${version}: snapshot ${s.name} is unusable — ${problem}; marked bad, trying an older one`);
      }
      return null;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Downloads one snapshot to `tmp` and checks it: undefined when usable, why not, or null when it is gone. */
  async #fetchChecked(s: SnapshotInfo, tmp: string, codeHash: string, signal?: AbortSignal): Promise<string | null | undefined> {
    const r = await this.os.get(s.name);
    if (!r) return null;
    await pipeline(Readable.fromWeb(r.data as never), createWriteStream(tmp) as Writable);
    const err = await r.error;
    if (err) {
      if (/digest/i.test(messageOf(err))) return `the object store's digest does not match its content (${messageOf(err)})`;
      throw err; // the transfer failed, not the snapshot
    }
    const c = await runSnapshotJob({ op: "verify", path: tmp }, signal);
    if (c.problem) return c.problem;
    if (s.sha256 && c.sha256 !== s.sha256) return `its SHA-256 ${c.sha256.slice(0, 12)} is not the ${s.sha256.slice(0, 12)} recorded when it was taken`;
    const m = c.meta ?? {};
    if (m.processor !== s.processor || m.version !== String(s.version)) return `it is a view file of ${m.processor ?? "?"} v${m.version ?? "?"}, not ${s.processor} v${s.version}`;
    if (m.code_hash !== codeHash) return `it was built by code ${String(m.code_hash).slice(0, 12)}, not ${codeHash.slice(0, 12)}`;
    if (c.checkpoint !== s.checkpoint) return `its checkpoint is ${c.checkpoint}, not the ${s.checkpoint} its name and metadata say`;
    return undefined;
  }
}
