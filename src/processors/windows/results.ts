import type { Database } from "better-sqlite3";
import { forgetStatements, isMissingTable, statement } from "../synopses/statements.js";
import type { ResultColumns } from "./aggregate.js";
import { WindowConfigError } from "./errors.js";

/** How result rows are keyed: one per (key, window) for tumbling, hopping, session; one per key for sliding. */
export type ResultShape = "per-window" | "per-key";

/** The SQLite type of `window_start` / `window_end`: ISO text for time windows, ordinals for count windows. */
export type BoundType = "TEXT" | "INTEGER";

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function quoteIdent(name: string): string {
  return `"${name}"`; // names are checked against IDENT first
}

/**
 * The user-named table of a window's results, which queries read while windows are open.
 * Created on first use (or by adding `schema` to the processor's migrations).
 */
export class ResultsTable {
  readonly name: string;
  readonly schema: string;
  readonly #sql: { probe: string; upsert: string; finalize: string; remove: string; retain: string };

  constructor(window: string, name: string, shape: ResultShape, bounds: BoundType) {
    if (!IDENT.test(name) || name.toLowerCase().startsWith("kappa_") || name.toLowerCase().startsWith("sqlite_")) {
      throw new WindowConfigError(window, `table ${JSON.stringify(name)} is not a usable table name`, "use letters, digits and _, not starting with kappa_ or sqlite_ (those tables are Kappa's)");
    }
    this.name = name;
    const t = quoteIdent(name);
    const pk = shape === "per-window" ? "key, window_start" : "key";
    this.schema =
      `CREATE TABLE IF NOT EXISTS ${t} (key TEXT NOT NULL, window_start ${bounds} NOT NULL, window_end ${bounds} NOT NULL, ` +
      `count INTEGER NOT NULL, sum NUMERIC, min NUMERIC, max NUMERIC, mean NUMERIC, value TEXT, final INTEGER NOT NULL DEFAULT 0, ` +
      `PRIMARY KEY (${pk})) WITHOUT ROWID`;
    this.#sql = {
      probe: `SELECT 1 FROM ${t} LIMIT 0`,
      upsert:
        `INSERT INTO ${t} (key, window_start, window_end, count, sum, min, max, mean, value, final) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ` +
        `ON CONFLICT (${pk}) DO UPDATE SET window_start = excluded.window_start, window_end = excluded.window_end, count = excluded.count, ` +
        `sum = excluded.sum, min = excluded.min, max = excluded.max, mean = excluded.mean, value = excluded.value, final = excluded.final`,
      finalize: `UPDATE ${t} SET final = 1 WHERE key = ? AND window_start = ?`,
      remove: `DELETE FROM ${t} WHERE key = ? AND window_start = ?`,
      retain:
        `DELETE FROM ${t} WHERE key = @key AND final = 1 AND window_start < ` +
        `(SELECT window_start FROM ${t} WHERE key = @key AND final = 1 ORDER BY window_start DESC LIMIT 1 OFFSET @skip)`,
    };
  }

  /**
   * Makes sure the table exists. Runs first in every `add`, before anything is written: if a
   * rollback undid the CREATE TABLE, recreating it here cannot double-apply anything.
   */
  ensure(db: Database): void {
    try {
      statement(db, this.#sql.probe).get();
    } catch (err) {
      if (!isMissingTable(err)) throw err;
      forgetStatements(db);
      db.exec(this.schema);
    }
  }

  /** Writes a window's current row. */
  upsert(db: Database, key: string, start: string | number, end: string | number, cols: ResultColumns, final: boolean): void {
    statement(db, this.#sql.upsert).run(key, start, end, ...cols, final ? 1 : 0);
  }

  /** Marks a window's row final: the watermark passed its end, no event can change it any more. */
  finalize(db: Database, key: string, start: string | number): void {
    statement(db, this.#sql.finalize).run(key, start);
  }

  /** Deletes a window's row (a session that merged into another). */
  remove(db: Database, key: string, start: string | number): void {
    statement(db, this.#sql.remove).run(key, start);
  }

  /** Keeps only the newest `keep` final rows of a key. */
  retain(db: Database, key: string, keep: number): void {
    statement(db, this.#sql.retain).run({ key, skip: keep - 1 });
  }
}
