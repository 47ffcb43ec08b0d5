import { mkdirSync, statSync, truncateSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/**
 * File locks that the kernel keeps: SQLite's POSIX (fcntl) locks on a small lock file. The kernel drops
 * them when the holder dies, so nothing is ever stale, no PID is compared (PIDs get reused, and a process
 * in another PID namespace has numbers that mean nothing here), and taking one is a single atomic step.
 * SQLite also keeps the locks of connections inside one process apart, so two holders in one process
 * (kappa dev's worker and its query server) see each other too.
 */
export interface FileLock {
  /** Lets go of the lock (idempotent). */
  release(): void;
}

function open(path: string, waitMs: number): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: waitMs });
  // A rollback journal, so a reader's SHARED lock and a taker's EXCLUSIVE lock exclude each other on the file itself.
  db.pragma("journal_mode = DELETE");
  return db;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? "";
  return code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED");
}

/**
 * Every lock held now. A better-sqlite3 handle that nothing references is closed when V8 collects it, and
 * its lock goes with it: a holder that kept only a release function it never calls (or nothing at all)
 * would lose its lock at the next full GC while it still runs (seen: V8's memory reducer freed a worker
 * lock a few seconds after start, and a second worker took the data dir). Held here, a lock ends only by
 * `release()` or by the process dying.
 */
const HELD = new Set<Database.Database>();

function holding(db: Database.Database): FileLock {
  let held = true;
  HELD.add(db);
  return {
    release() {
      if (!held) return;
      held = false;
      HELD.delete(db);
      try {
        if (db.inTransaction) db.exec("ROLLBACK");
      } finally {
        db.close();
      }
    },
  };
}

/** Takes the exclusive lock on `path`, waiting up to `waitMs`; null when others hold it (shared or exclusive). */
export function tryExclusiveLock(path: string, waitMs = 0): FileLock | null {
  try {
    return exclusive(path, waitMs);
  } catch (err) {
    // Lock files stay empty (nobody writes in these transactions): content is a leftover such as an old PID file.
    // Emptying it is safe even while someone holds a lock, since the locks sit on byte ranges, not on content.
    if ((err as { code?: string }).code !== "SQLITE_NOTADB") throw err;
    truncateSync(path, 0);
    return exclusive(path, waitMs);
  }
}

function exclusive(path: string, waitMs: number): FileLock | null {
  return lockWith(path, waitMs, (db) => db.exec("BEGIN EXCLUSIVE"));
}

/** Takes a shared lock on `path` (many holders at once), waiting up to `waitMs` while someone holds it exclusively; null if that lasts longer. */
export function trySharedLock(path: string, waitMs: number): FileLock | null {
  return lockWith(path, waitMs, (db) => {
    db.exec("BEGIN");
    // A read inside the transaction takes SHARED and keeps it until the transaction ends.
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
  });
}

/** Opens the lock file and runs `take` to lock it; null when someone else's lock outlasts `waitMs`. */
function lockWith(path: string, waitMs: number, take: (db: Database.Database) => void): FileLock | null {
  let db: Database.Database;
  try {
    db = open(path, waitMs);
  } catch (err) {
    if (isBusy(err)) return null;
    throw err;
  }
  try {
    take(db);
    return holding(db);
  } catch (err) {
    db.close();
    if (isBusy(err)) return null;
    throw err;
  }
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/**
 * One lock file kept open for many short shared locks, for pollers (opening a lock file costs far more
 * than locking it). `current()` says whether the path still names the file this handle has open: a
 * deleter removes lease files, and a lock on a removed file excludes nobody.
 */
export class SharedLocker {
  readonly #db: Database.Database;
  readonly #probe: Database.Statement;
  readonly #ino: number;

  private constructor(readonly path: string, db: Database.Database, ino: number) {
    this.#db = db;
    this.#probe = db.prepare("SELECT count(*) FROM sqlite_schema");
    this.#ino = ino;
  }

  /** Opens the lock file (creating it), sure that the handle and the path name the same file; null while someone holds it exclusively. */
  static open(path: string): SharedLocker | null {
    for (let attempt = 0; ; attempt++) {
      const before = inode(path);
      let db: Database.Database;
      try {
        db = open(path, 0);
      } catch (err) {
        if (isBusy(err)) return null;
        throw err;
      }
      const after = inode(path);
      if ((before !== undefined && before === after) || attempt >= 3) return new SharedLocker(path, db, after ?? -1);
      db.close(); // created just now, or replaced meanwhile: look again
    }
  }

  /** True while the path still names the file this handle holds. */
  current(): boolean {
    return inode(this.path) === this.#ino;
  }

  /** A shared lock without waiting; null while someone holds the file exclusively. */
  tryShared(): FileLock | null {
    try {
      this.#db.exec("BEGIN");
      this.#probe.get();
    } catch (err) {
      if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
      if (isBusy(err)) return null;
      throw err;
    }
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
      },
    };
  }

  /** Closes the handle (any lock goes with it). */
  close(): void {
    this.#db.close();
  }
}
