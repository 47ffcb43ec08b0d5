import { existsSync, statSync } from "node:fs";
import Database, { type Database as Db, type Statement } from "better-sqlite3";
import { PollingLeases, type DataDir } from "../../views/index.js";

interface Handle {
  db: Db;
  stmt: Statement;
  ino: number;
  usedAt: number;
}

const IDLE_MS = 30_000;

/**
 * Reads view checkpoints cheaply and often (change streams poll every few dozen ms): one read-only handle
 * and prepared statement per file, reopened when the file is replaced (a rebuilt view) and closed when unused.
 * Each read is its own short transaction, so it never holds back the writer's WAL checkpoints, and it runs
 * under a reader lease like a query's (taken without waiting: a poll must not stall), so the worker never
 * removes a file in the middle of a read, and a file being removed is not opened (which would leave a
 * fresh -shm/-wal beside it).
 */
export class CheckpointReader {
  readonly #open = new Map<string, Handle>();
  readonly #leases = new PollingLeases();
  /** The lease of each file read lately (viewsDir, version), to close its lock file when the file goes idle. */
  readonly #leaseOf = new Map<string, [string, number]>();
  readonly #sweep = setInterval(() => this.#closeIdle(), IDLE_MS).unref();

  /** The checkpoint (last applied sequence) of a version's file, or null when it does not exist (yet), cannot be read, or is being deleted. */
  read(dataDir: DataDir, processor: string, version: number): number | null {
    const path = dataDir.viewFile(processor, version);
    // No lease (and no lease file) for a version this data dir does not hold.
    if (!existsSync(path)) {
      this.#drop(path);
      return null;
    }
    this.#leaseOf.set(path, [dataDir.viewsOf(processor), version]);
    return this.#leases.read(dataDir.viewsOf(processor), version, () => this.#read(path));
  }

  #read(path: string): number | null {
    let ino: number;
    try {
      ino = statSync(path).ino;
    } catch {
      this.#drop(path);
      return null;
    }
    let h = this.#open.get(path);
    if (h && h.ino !== ino) {
      this.#drop(path);
      h = undefined;
    }
    try {
      if (!h) {
        const db = new Database(path, { readonly: true, fileMustExist: true });
        try {
          h = { db, stmt: db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck(), ino, usedAt: 0 };
        } catch (err) {
          db.close();
          throw err;
        }
        this.#open.set(path, h);
      }
      h.usedAt = Date.now();
      const seq = h.stmt.get() as number | bigint | undefined;
      return seq === undefined ? 0 : Number(seq);
    } catch {
      // Not migrated yet, or being replaced: the next poll tries again.
      this.#drop(path);
      return null;
    }
  }

  #drop(path: string): void {
    const h = this.#open.get(path);
    if (!h) return;
    this.#open.delete(path);
    try {
      h.db.close();
    } catch {
      // already closed
    }
  }

  #closeIdle(): void {
    const cutoff = Date.now() - IDLE_MS;
    for (const [path, h] of this.#open) if (h.usedAt < cutoff) this.#drop(path);
    for (const [path, [dir, version]] of this.#leaseOf) {
      if (this.#open.has(path)) continue;
      this.#leases.forget(dir, version);
      this.#leaseOf.delete(path);
    }
  }

  /** Closes every handle. */
  close(): void {
    clearInterval(this.#sweep);
    for (const path of [...this.#open.keys()]) this.#drop(path);
    this.#leases.close();
    this.#leaseOf.clear();
  }
}
