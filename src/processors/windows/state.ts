import type { Database } from "better-sqlite3";
import { statement } from "../synopses/statements.js";

const GET = "SELECT value FROM kappa_state WHERE name = ? AND key = ?";
const PUT = "INSERT INTO kappa_state (name, key, value) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value";
const DEL = "DELETE FROM kappa_state WHERE name = ? AND key = ?";
const RANGE = "SELECT key, value FROM kappa_state WHERE name = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?";
const DEL_THROUGH = "DELETE FROM kappa_state WHERE name = ? AND key >= ? AND key <= ?";

/** A state row: its key and JSON text. */
export interface StateRow {
  key: string;
  value: string;
}

/** Rows a range scan reads at a time, so closing many windows at once holds bounded memory. */
export const SCAN_BATCH = 512;

/**
 * A window's working state in `kappa_state` (name `window:<window>`), as JSON text per key. Read
 * from SQLite on every event rather than cached: the batch transaction may roll back, and SQLite's
 * page cache already makes these lookups cheap.
 */
export class WindowState {
  readonly name: string;

  constructor(window: string) {
    this.name = `window:${window}`;
  }

  /** The parsed JSON of `key`, or undefined. */
  get<V>(db: Database, key: string): V | undefined {
    const text = statement(db, GET).pluck().get(this.name, key) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as V);
  }

  /** Stores JSON text under `key`. */
  put(db: Database, key: string, json: string): void {
    statement(db, PUT).run(this.name, key, json);
  }

  /** Removes `key`. */
  delete(db: Database, key: string): void {
    statement(db, DEL).run(this.name, key);
  }

  /** Up to `limit` rows with from ≤ key < to, in key order. */
  range(db: Database, from: string, to: string, limit = SCAN_BATCH): StateRow[] {
    return statement(db, RANGE).all(this.name, from, to, limit) as StateRow[];
  }

  /** Hands every row with from ≤ key < to to `page`, a page at a time, and removes each page once handled. */
  drain(db: Database, from: string, to: string, page: (rows: StateRow[]) => void): void {
    for (;;) {
      const rows = this.range(db, from, to);
      page(rows);
      if (rows.length > 0) this.deleteThrough(db, from, rows[rows.length - 1]!.key);
      if (rows.length < SCAN_BATCH) return;
    }
  }

  /** Removes every row with from ≤ key ≤ last (after a range scan handled them). */
  deleteThrough(db: Database, from: string, last: string): void {
    statement(db, DEL_THROUGH).run(this.name, from, last);
  }
}
