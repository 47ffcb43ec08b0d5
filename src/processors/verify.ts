import Database from "better-sqlite3";
import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError } from "../errors.js";
import type { StreamSpec } from "../log/index.js";
import { Catalog, compareDbs, digestDb, takeLease, type DataDir, type TableComparison } from "../views/index.js";
import { CodeStore } from "./codeStore.js";
import { loadProcessor } from "./load.js";
import { buildShadow } from "./shadow.js";

/** The outcome of `kappa verify`. */
export interface VerifyReport {
  processor: string;
  version: number;
  seq: number;
  ok: boolean;
  digest: string;
  shadowDigest: string;
  /** Digest of dead letters, late events and window state, in the view and in the rebuild. */
  platformDigest: string;
  shadowPlatformDigest: string;
  tables: TableComparison[];
}

/**
 * Anti-entropy: rebuilds a shadow copy of the version from the log up to the version's checkpoint, in a
 * temporary file, and compares it with the view table by table, row by row — while holding one read
 * snapshot of the view so the worker can go on writing.
 */
export async function verifyVersion(nc: NatsConnection, spec: StreamSpec, dataDir: DataDir, processor: string, version?: number): Promise<VerifyReport> {
  const catalog = await Catalog.open(nc, spec.stream);
  const rec = await catalog.require(processor);
  const v = version ?? rec.live;
  if (v === null || v === undefined) throw new KappaError("NO_LIVE_VERSION", `${processor} has no live version`, { hint: "pass --version" });
  const record = rec.versions[String(v)];
  if (!record) throw new KappaError("NOT_FOUND", `${processor} has no version ${v}`, { hint: `see \`kappa status ${processor}\`` });
  const def = await loadProcessor(await (await CodeStore.open(nc, spec.stream, dataDir)).get(record.codeHash, record.codeKind));
  // A reader lease for as long as the view is open, as queries take: a retire meanwhile waits for us.
  const release = takeLease(dataDir.viewsOf(processor), v);
  let view;
  try {
    view = new Database(dataDir.viewFile(processor, v), { readonly: true, fileMustExist: true });
  } catch (err) {
    release();
    throw new KappaError("VIEW_MISSING", `view file of ${processor} v${v} is not in ${dataDir.root}`, { hint: "run verify where the worker keeps its files (--data-dir)", cause: err });
  }
  try {
    view.exec("BEGIN");
    const seq = Number(view.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck().get());
    const shadow = await buildShadow(nc, spec, record, def, seq);
    try {
      const tables = compareDbs(view, shadow.writer.db);
      const a = digestDb(view);
      const b = digestDb(shadow.writer.db);
      const ok = tables.every((t) => t.equal) && a.digest === b.digest && a.platform.digest === b.platform.digest;
      return { processor, version: v, seq, ok, digest: a.digest, shadowDigest: b.digest, platformDigest: a.platform.digest, shadowPlatformDigest: b.platform.digest, tables };
    } finally {
      shadow.close();
    }
  } finally {
    if (view.inTransaction) view.exec("COMMIT");
    view.close();
    release();
  }
}

/** The outcome of `kappa diff`. */
export interface DiffReport {
  processor: string;
  a: { version: number; seq: number };
  b: { version: number; seq: number };
  tables: TableComparison[];
}

/**
 * Compares two versions table by table: at the same sequence (waiting briefly for them to line up), or with
 * `anySeq` each at its own checkpoint — a frozen version against a live one says what changed since then.
 */
export async function diffVersions(dataDir: DataDir, processor: string, va: number, vb: number, timeoutMs = 5000, anySeq = false): Promise<DiffReport> {
  const open = (v: number) => {
    try {
      return new Database(dataDir.viewFile(processor, v), { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new KappaError("VIEW_MISSING", `view file of ${processor} v${v} is not in ${dataDir.root}`, { hint: "run diff where the worker keeps its files (--data-dir)", cause: err });
    }
  };
  // Reader leases on both before either file is opened, held until both are closed (see views/leases.ts).
  const releases = [takeLease(dataDir.viewsOf(processor), va), takeLease(dataDir.viewsOf(processor), vb)];
  let a: Database.Database;
  let b: Database.Database;
  try {
    a = open(va);
    try {
      b = open(vb);
    } catch (err) {
      a.close();
      throw err;
    }
  } catch (err) {
    for (const r of releases) r();
    throw err;
  }
  const seqOf = (db: Database.Database) => Number(db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck().get());
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      a.exec("BEGIN");
      b.exec("BEGIN");
      const sa = seqOf(a);
      const sb = seqOf(b);
      if (sa === sb || anySeq) {
        const tables = compareDbs(a, b);
        a.exec("COMMIT");
        b.exec("COMMIT");
        return { processor, a: { version: va, seq: sa }, b: { version: vb, seq: sb }, tables };
      }
      a.exec("COMMIT");
      b.exec("COMMIT");
      if (Date.now() > deadline) {
        throw new KappaError("NOT_ALIGNED", `v${va} is at ${sa} and v${vb} at ${sb}`, { hint: "wait until both have caught up (`kappa status`), or retry when the log is quiet" });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    a.close();
    b.close();
    for (const r of releases) r();
  }
}
