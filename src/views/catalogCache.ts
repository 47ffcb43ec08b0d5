import { readFileSync } from "node:fs";
import { writeAtomicallyText } from "./files.js";
import type { ProcessorRecord } from "./catalogTypes.js";

/** The local copy of the catalog a worker keeps, so queries and status work while NATS is unreachable. */
export interface CatalogSnapshot {
  at: string;
  records: ProcessorRecord[];
}

/** Reads the local copy; null when there is none. */
export function readCatalogCache(path: string): CatalogSnapshot | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as CatalogSnapshot;
  } catch {
    return null;
  }
}

/** Replaces one processor's record in the local copy (atomically). */
export function updateCatalogCache(path: string, record: ProcessorRecord): void {
  const snap = readCatalogCache(path) ?? { at: "", records: [] };
  const records = snap.records.filter((r) => r.name !== record.name);
  records.push(record);
  records.sort((a, b) => a.name.localeCompare(b.name));
  writeAtomicallyText(path, JSON.stringify({ at: new Date().toISOString(), records }));
}
