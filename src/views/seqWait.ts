import Database, { type Database as Db, type Statement } from "better-sqlite3";
import { KappaError } from "../errors.js";

/** Polls start this fast and slow down to the slowest, so a short wait answers at once and a long one costs little. */
const FASTEST_MS = 2;
const SLOWEST_MS = 25;

/** What a wait cost: SQLite handles opened and checkpoint reads made. */
export interface SeqWaitStats {
  opens: number;
  polls: number;
}

/**
 * Waits until the view file at `path` has applied `seq` (read-your-writes). One read-only handle and one
 * prepared statement for the whole wait — each poll is a single-row read, not a new SQLite connection.
 */
export async function waitForSeq(path: string, seq: number, deadline: number): Promise<SeqWaitStats> {
  const stats: SeqWaitStats = { opens: 0, polls: 0 };
  let db: Db | undefined;
  let stmt: Statement | undefined;
  let at: number | null = null;
  let delay = FASTEST_MS;
  try {
    for (;;) {
      try {
        if (!db) {
          db = new Database(path, { readonly: true, fileMustExist: true });
          stats.opens++;
          stmt = db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck();
        }
        stats.polls++;
        at = Number(stmt!.get() ?? 0);
        if (at >= seq) return stats;
      } catch {
        // Not there or not migrated yet: open again on the next poll.
        db?.close();
        db = undefined;
      }
      if (Date.now() >= deadline) {
        throw new KappaError("MIN_SEQ_TIMEOUT", `the view has not applied sequence ${seq} yet (at ${at ?? "nothing"})`, {
          hint: "raise --timeout, or check `kappa status` for lag or a failure",
        });
      }
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(1, deadline - Date.now()))));
      delay = Math.min(SLOWEST_MS, delay * 2);
    }
  } finally {
    db?.close();
  }
}
