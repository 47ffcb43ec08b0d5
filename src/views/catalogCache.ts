import { readFileSync } from "node:fs";
import { KappaError } from "../errors.js";
import { writeAtomicallyText } from "./files.js";
import { tryExclusiveLock } from "./fileLock.js";
import type { ProcessorRecord } from "./catalogTypes.js";

/** The local copy of the catalog a worker keeps, so queries and status work while NATS is unreachable. */
export interface CatalogSnapshot {
  at: string;
  records: ProcessorRecord[];
  /** The catalog revision each record was read at, so an older one never replaces a newer one. */
  revisions?: Record<string, number>;
}

/** How long an update waits for another process that is updating the copy (they take milliseconds). */
const LOCK_WAIT_MS = 5000;

/** Reads the local copy; null when there is none. */
export function readCatalogCache(path: string): CatalogSnapshot | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as CatalogSnapshot;
  } catch {
    return null;
  }
}

/**
 * Replaces one processor's record in the local copy. The worker and any CLI command may do this at the same
 * moment, so the read-change-write runs under an exclusive lock (nobody's update is lost) and the file is
 * replaced by a rename (a reader sees the old copy or the new, never half). With `revision`, a record older
 * than the one already there (a watch lagging behind a CLI command) changes nothing.
 */
export function updateCatalogCache(path: string, record: ProcessorRecord, revision?: number): void {
  const lock = tryExclusiveLock(`${path}.lock`, LOCK_WAIT_MS);
  if (!lock) throw new KappaError("CATALOG_COPY_BUSY", `the local catalog copy ${path} stayed locked for ${LOCK_WAIT_MS} ms`, { hint: "another kappa process is stuck updating it; it is only a copy, the catalog in NATS is the truth" });
  try {
    const snap = readCatalogCache(path) ?? { at: "", records: [] };
    const revisions = { ...(snap.revisions ?? {}) };
    const known = revisions[record.name];
    if (revision !== undefined && known !== undefined && known >= revision) return;
    if (revision !== undefined) revisions[record.name] = revision;
    else delete revisions[record.name];
    const records = snap.records.filter((r) => r.name !== record.name);
    records.push(record);
    records.sort((a, b) => a.name.localeCompare(b.name));
    writeAtomicallyText(path, JSON.stringify({ at: new Date().toISOString(), records, revisions }));
  } finally {
    lock.release();
  }
}
