import Database from "better-sqlite3";
import type { ProcessorRecord, VersionRecord } from "../views/index.js";
import type { SnapshotStore } from "./snapshots.js";

/** Where a new frozen version can start instead of the beginning of the log. */
export interface VersionSeed {
  version: number;
  checkpoint: number;
}

/**
 * The newest snapshot, at or before `untilSeq`, of a version that runs `basis`'s code over the whole log
 * from the same input: a copy of what a build from the start would hold at that checkpoint.
 */
export async function newestSeed(store: SnapshotStore, rec: ProcessorRecord, basis: VersionRecord, untilSeq: number): Promise<VersionSeed | undefined> {
  let best: VersionSeed | undefined;
  for (const v of Object.values(rec.versions)) {
    const sameInput = v.source?.processor === basis.source?.processor && v.source?.version === basis.source?.version;
    if (v.codeHash !== basis.codeHash || (v.startSeq ?? 1) > 1 || !sameInput || v.state === "failed" || v.error) continue;
    for (const s of await store.list(rec.name, v.version)) {
      if (s.codeHash === v.codeHash && s.checkpoint <= untilSeq && s.checkpoint > (best?.checkpoint ?? 0)) best = { version: v.version, checkpoint: s.checkpoint };
    }
  }
  return best;
}

/**
 * Makes a restored copy of another version's view file this version's own: its identity names this
 * version and catalog entry. The other version's unpublished emits are dropped: a seeded version
 * publishes emits only for the events after its seed.
 */
export function adoptSeedFile(path: string, v: VersionRecord): void {
  const db = new Database(path);
  try {
    db.transaction(() => {
      const set = db.prepare("UPDATE kappa_meta SET value = ? WHERE key = ?");
      set.run(String(v.version), "version");
      set.run(v.createdAt, "entry");
      db.exec("DELETE FROM kappa_outbox");
    })();
  } finally {
    db.close();
  }
}

/**
 * Where a version with no view file here starts: its own newest snapshot (a new replica replays only the
 * tail), else for a frozen version built for `query --as-of`, another version's snapshot at or before its
 * end. The checkpoint the restored file holds, or null to build from the log.
 */
export async function restoreViewFile(store: SnapshotStore, file: string, name: string, v: VersionRecord, log: (line: string) => void, worker?: string): Promise<number | null> {
  const opts = { log, ...(worker !== undefined ? { worker } : {}) };
  const s = await store.restore(file, name, v.version, v.codeHash, opts);
  if (s) log(`${name}/${v.version}: joined from the snapshot at ${s.checkpoint}; replaying only the tail`);
  if (s || !v.seed) return s?.checkpoint ?? null;
  const seed = await store.restore(file, name, v.seed.version, v.codeHash, { ...opts, maxCheckpoint: v.untilSeq ?? v.seed.checkpoint });
  if (!seed) return null;
  adoptSeedFile(file, v);
  log(`${name}/${v.version}: started from v${v.seed.version}'s snapshot at ${seed.checkpoint}; replaying only the tail`);
  return seed.checkpoint;
}
