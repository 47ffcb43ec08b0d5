import { statSync } from "node:fs";
import type { Database as Db } from "better-sqlite3";

/** The -wal file is cut back to this after a checkpoint, and checked against it (4 MiB). */
export const WAL_LIMIT_BYTES = 4 * 1024 * 1024;
/** How long a shrink may wait for readers still on an older snapshot. */
const WAIT_FOR_READERS_MS = 20;
const EVERY_MS = 1000;

/**
 * Keeps a view's write-ahead log small. SQLite resets the WAL only when no reader uses it, so readers that
 * never pause (or one long `kappa verify`) let it grow without bound. `journal_size_limit` cuts the file back
 * after each reset; and once a second, when the file is over the limit, a TRUNCATE checkpoint runs: it copies
 * every frame back, waits briefly for the readers on older snapshots (new readers read the main file, so they
 * do not hold it up), and empties the log. When a long reader is still there it gives up at once and tries
 * again a second later, so the writer never stalls for long.
 */
export class WalKeeper {
  readonly #timer: NodeJS.Timeout;
  /** Successful shrinks, for tests and metrics. */
  shrinks = 0;

  constructor(private readonly db: Db, private readonly path: string, private readonly busyTimeoutMs: number, readonly limitBytes = WAL_LIMIT_BYTES) {
    db.pragma(`journal_size_limit = ${limitBytes}`);
    this.#timer = setInterval(() => this.shrink(), EVERY_MS);
    this.#timer.unref();
  }

  /** Size of the -wal file in bytes (0 when absent). */
  walBytes(): number {
    try {
      return statSync(this.path + "-wal").size;
    } catch {
      return 0;
    }
  }

  /** Checkpoints and truncates the log when it is over the limit and the readers allow; true when it did. */
  shrink(): boolean {
    if (!this.db.open || this.db.inTransaction || this.walBytes() <= this.limitBytes) return false;
    this.db.pragma(`busy_timeout = ${WAIT_FOR_READERS_MS}`);
    try {
      const r = this.db.pragma("wal_checkpoint(TRUNCATE)") as { busy: number }[];
      if (r[0]?.busy === 0) this.shrinks++;
      return r[0]?.busy === 0;
    } catch {
      return false; // busy or locked: the next tick tries again
    } finally {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
