import type { Database, Statement } from "better-sqlite3";

/**
 * Prepared statements cached per database handle: helpers run per event, and preparing costs
 * more than running. The WeakMap lets a closed handle and its statements be collected.
 */
const caches = new WeakMap<Database, Map<string, Statement>>();

/** The statement for `sql` on `db`, prepared once per handle. */
export function statement(db: Database, sql: string): Statement {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  let s = cache.get(sql);
  if (!s) {
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
}

/** Forgets every statement cached for `db` (after a rollback dropped a table they refer to). */
export function forgetStatements(db: Database): void {
  caches.delete(db);
}

/** True when `err` is SQLite saying a table is missing: a rollback undid the helper's CREATE TABLE. */
export function isMissingTable(err: unknown): boolean {
  return err instanceof Error && /no such table/i.test(err.message);
}
