import { mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import Database, { type Database as Db, type Statement } from "better-sqlite3";
import { KappaError, UnavailableError, messageOf } from "../errors.js";
import { WalKeeper } from "./walKeeper.js";
import { loadKappaMigrations, migrate, processorMigrations } from "./migrations.js";

/** What a view file records about itself. */
export interface ViewIdentity {
  processor: string;
  version: number;
  codeHash: string;
  /** The log that feeds it (stream name and creation time): a file built from another log is rebuilt, never reused. */
  log?: string;
  /** The catalog entry that made it (the version record's creation time): a file from another entry is rebuilt. */
  entry?: string;
}

/** The checkpoint moved under us: another writer holds this view file. */
export class CheckpointConflictError extends KappaError {
  constructor(expected: number, found: number) {
    super("CHECKPOINT_CONFLICT", `checkpoint was ${found}, expected ${expected}: another worker is writing this view`, {
      hint: "run only one `kappa run` per data directory",
    });
  }
}

const STATEMENT_CACHE_LIMIT = 2000;

/** Makes `db.prepare(sql)` return a cached statement, so processors can prepare per event. */
function cachePrepare(db: Db): void {
  const original = db.prepare.bind(db);
  const cache = new Map<string, Statement>();
  (db as { prepare: (sql: string) => Statement }).prepare = (sql: string) => {
    let s = cache.get(sql);
    if (!s) {
      if (cache.size >= STATEMENT_CACHE_LIMIT) cache.clear();
      s = original(sql);
      cache.set(sql, s);
    } else if (s.reader) {
      // Shared between callers: undo a .pluck()/.raw()/.expand()/.safeIntegers() another caller set.
      s.pluck(false).expand(false).raw(false).safeIntegers(false);
    }
    return s;
  };
}

/** The writable SQLite file of one view version: migrations applied, checkpoint alongside the rows. */
export class ViewWriter {
  readonly db: Db;
  readonly path: string;
  #checkpoint: number;
  /** Set when open found a file built from another log or catalog entry, deleted it and began anew: why. */
  replaced: string | undefined;
  readonly #readCheckpoint: Statement;
  readonly #writeCheckpoint: Statement;

  readonly #wal: WalKeeper;

  private constructor(db: Db, path: string, busyTimeoutMs: number) {
    this.db = db;
    this.path = path;
    this.#wal = new WalKeeper(db, path, busyTimeoutMs);
    this.#readCheckpoint = db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1");
    this.#writeCheckpoint = db.prepare("UPDATE kappa_checkpoint SET seq = ?, events = events + ? WHERE id = 1 AND seq = ?");
    this.#checkpoint = (this.#readCheckpoint.get() as { seq: number }).seq;
  }

  /** Opens (creating if needed) a view file and applies Kappa's and the processor's migrations. */
  static open(path: string, id: ViewIdentity, schema: readonly string[], opts: { busyTimeoutMs?: number } = {}): ViewWriter {
    let db: Db;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new Database(path);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    } catch (err) {
      throw new UnavailableError("VIEW_OPEN_FAILED", `cannot open view file ${path}: ${messageOf(err)}`, {
        hint: "check that the data directory is writable and the disk is not full (--data-dir)",
        cause: err,
      });
    }
    try {
      migrate(db, loadKappaMigrations());
      const foreign = foreignReason(db, id);
      if (foreign) {
        db.close();
        for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
        const fresh = ViewWriter.open(path, id, schema, opts);
        fresh.replaced = `${path} ${foreign} — rebuilt from the log`;
        return fresh;
      }
      const meta = db.prepare("INSERT INTO kappa_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING");
      db.transaction(() => {
        meta.run("processor", id.processor);
        meta.run("version", String(id.version));
        meta.run("code_hash", id.codeHash);
        if (id.log !== undefined) meta.run("log", id.log);
        if (id.entry !== undefined) meta.run("entry", id.entry);
      })();
      const stored = db.prepare("SELECT value FROM kappa_meta WHERE key = 'code_hash'").pluck().get();
      if (stored !== id.codeHash) {
        throw new KappaError("VIEW_CODE_MISMATCH", `view file ${path} was built by code ${String(stored).slice(0, 12)}, not ${id.codeHash.slice(0, 12)}`, {
          hint: "delete the file; the worker rebuilds it from the log",
        });
      }
      migrate(db, processorMigrations(schema));
      cachePrepare(db);
      return new ViewWriter(db, path, opts.busyTimeoutMs ?? 5000);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The last applied stream sequence (0 before the first event). */
  get checkpoint(): number {
    return this.#checkpoint;
  }

  /**
   * Runs `work` and moves the checkpoint to `seq` in one transaction; nothing is written if either fails.
   * `work` returns how many events it applied (counted in the checkpoint row).
   */
  commit(seq: number, work: () => number | void): void {
    const from = this.#checkpoint;
    this.db.transaction(() => {
      const events = work() ?? 0;
      const r = this.#writeCheckpoint.run(seq, events, from);
      if (r.changes !== 1) throw new CheckpointConflictError(from, (this.#readCheckpoint.get() as { seq: number }).seq);
    })();
    this.#checkpoint = seq;
  }

  /** Size of the -wal file in bytes (0 when absent), to watch for checkpoint starvation. */
  walBytes(): number {
    return this.#wal.walBytes();
  }

  /** Checkpoints and truncates the WAL now if it is over its limit and readers allow (a timer also does this every second). */
  shrinkWal(): boolean {
    return this.#wal.shrink();
  }

  close(): void {
    this.#wal.stop();
    if (this.db.open) this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Why an existing file does not belong to this identity's log and catalog entry (undefined when it does, or is new). */
function foreignReason(db: Db, id: ViewIdentity): string | undefined {
  if (id.log === undefined && id.entry === undefined) return undefined;
  const meta = new Map((db.prepare("SELECT key, value FROM kappa_meta").all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  if (!meta.has("processor")) return undefined; // a new file
  if (id.log !== undefined && meta.get("log") !== id.log) return `was built from log ${meta.get("log") ?? "(unrecorded)"}, not ${id.log}`;
  if (id.entry !== undefined && meta.get("entry") !== id.entry) return `was built for catalog entry ${meta.get("entry") ?? "(unrecorded)"}, not ${id.entry}`;
  return undefined;
}

/** Reads the checkpoint of a view file without opening it for writing; null when the file is missing. */
export function readCheckpoint(path: string): number | null {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").get() as { seq: number } | undefined)?.seq ?? 0;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}
