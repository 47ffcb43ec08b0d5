import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import Database from "better-sqlite3";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore, type ObjectInfo } from "@nats-io/obj";
import { KappaError, messageOf } from "../errors.js";
import { replicasFor } from "../log/index.js";

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
}

const prefixOf = (processor: string, version: number) => `${processor}/v${version}/`;

function infoOf(o: ObjectInfo): SnapshotInfo | null {
  const m = o.metadata ?? {};
  if (o.deleted || !m.checkpoint || !m.processor) return null;
  return { name: o.name, processor: m.processor, version: Number(m.version), checkpoint: Number(m.checkpoint), codeHash: m.code_hash ?? "", bytes: o.size, createdAt: m.created_at ?? o.mtime };
}

/**
 * Consistent copies of view files in the object store: `VACUUM INTO` reads one snapshot of the file (the
 * checkpoint row and the rows it covers, together), so a copy can seed a new replica that replays only the tail.
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

  /** Copies a live view file consistently and stores it; returns what was stored. Old snapshots beyond `keep` are deleted. */
  async take(viewFile: string, processor: string, version: number, keep = DEFAULT_SNAPSHOT_KEEP): Promise<SnapshotInfo> {
    const tmp = `${viewFile}.snapshot-${process.pid}-${Date.now()}`;
    try {
      const src = new Database(viewFile, { readonly: true, fileMustExist: true });
      try {
        src.prepare("VACUUM INTO ?").run(tmp);
      } finally {
        src.close();
      }
      const copy = new Database(tmp, { readonly: true });
      let checkpoint: number;
      let codeHash: string;
      try {
        checkpoint = (copy.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").get() as { seq: number }).seq;
        codeHash = String(copy.prepare("SELECT value FROM kappa_meta WHERE key = 'code_hash'").pluck().get() ?? "");
      } finally {
        copy.close();
      }
      const createdAt = new Date().toISOString();
      const name = `${prefixOf(processor, version)}${String(checkpoint).padStart(12, "0")}`;
      const metadata = { processor, version: String(version), checkpoint: String(checkpoint), code_hash: codeHash, created_at: createdAt };
      await this.os.put({ name, metadata }, Readable.toWeb(createReadStream(tmp)) as ReadableStream<Uint8Array>);
      await this.prune(processor, version, keep);
      return { name, processor, version, checkpoint, codeHash, bytes: statSync(tmp).size, createdAt };
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Every snapshot of one version, newest (highest checkpoint) first. */
  async list(processor: string, version: number): Promise<SnapshotInfo[]> {
    const all = await this.os.list();
    return all
      .filter((o) => o.name.startsWith(prefixOf(processor, version)))
      .map(infoOf)
      .filter((s): s is SnapshotInfo => s !== null)
      .sort((a, b) => b.checkpoint - a.checkpoint);
  }

  /** Deletes all but the newest `keep` snapshots of a version. */
  async prune(processor: string, version: number, keep: number): Promise<number> {
    const old = (await this.list(processor, version)).slice(Math.max(1, keep));
    for (const s of old) await this.os.delete(s.name).catch(() => {});
    return old.length;
  }

  /**
   * Restores the newest snapshot of a version built by `codeHash` (at or below `maxCheckpoint`) to `viewFile` (which must not exist yet):
   * downloaded beside it and renamed into place, so a crash leaves either no file or a whole one.
   */
  async restore(viewFile: string, processor: string, version: number, codeHash: string, maxCheckpoint = Infinity): Promise<SnapshotInfo | null> {
    const s = (await this.list(processor, version)).find((x) => x.codeHash === codeHash && x.checkpoint <= maxCheckpoint);
    if (!s) return null;
    const r = await this.os.get(s.name);
    if (!r) return null;
    mkdirSync(dirname(viewFile), { recursive: true });
    const tmp = `${viewFile}.restore-${process.pid}`;
    try {
      await pipeline(Readable.fromWeb(r.data as never), createWriteStream(tmp) as Writable);
      const err = await r.error;
      if (err) throw err;
      renameSync(tmp, viewFile);
      return s;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}
