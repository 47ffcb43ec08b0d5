import { statSync } from "node:fs";
import Database, { type Database as Db, type Statement } from "better-sqlite3";

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
 * Each read is its own short transaction, so it never holds back the writer's WAL checkpoints.
 */
export class CheckpointReader {
  readonly #open = new Map<string, Handle>();
  readonly #sweep = setInterval(() => this.#closeIdle(), IDLE_MS).unref();

  /** The checkpoint (last applied sequence) of the file at `path`, or null when it does not exist (yet) or cannot be read. */
  read(path: string): number | null {
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
  }

  /** Closes every handle. */
  close(): void {
    clearInterval(this.#sweep);
    for (const path of [...this.#open.keys()]) this.#drop(path);
  }
}
