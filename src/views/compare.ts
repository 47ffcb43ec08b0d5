import type { Database as Db } from "better-sqlite3";
import { userTables, keyOrder, quoteIdent, encodeValue } from "./digest.js";

/** How one table differs between two views. */
export interface TableComparison {
  table: string;
  rowsA: number | null;
  rowsB: number | null;
  equal: boolean;
  /** Keys (as JSON arrays) of rows that differ or exist on one side only, at most `maxKeys`. */
  differingKeys: string[];
  differing: number;
  /** Of the differing rows: keys only in A, only in B, and in both with other values (what changed between two moments). */
  onlyA?: number;
  onlyB?: number;
  changed?: number;
}

/** Row-by-row comparison of two views' user tables, walking both in key order. */
export function compareDbs(a: Db, b: Db, maxKeys = 20): TableComparison[] {
  const tables = [...new Set([...userTables(a), ...userTables(b)])].sort();
  const ta = new Set(userTables(a));
  const tb = new Set(userTables(b));
  return tables.map((t) => {
    if (!ta.has(t) || !tb.has(t)) {
      const rows = (db: Db) => Number(db.prepare(`SELECT count(*) FROM ${quoteIdent(t)}`).pluck().get());
      return { table: t, rowsA: ta.has(t) ? rows(a) : null, rowsB: tb.has(t) ? rows(b) : null, equal: false, differingKeys: [], differing: -1 };
    }
    return compareTable(a, b, t, maxKeys);
  });
}

function compareTable(a: Db, b: Db, table: string, maxKeys: number): TableComparison {
  const ka = keyOrder(a, table);
  const kb = keyOrder(b, table);
  const keyIdx = ka.keyColumns.map((c) => ka.columns.indexOf(c));
  const sql = (k: typeof ka) => `SELECT ${k.columns.map(quoteIdent).join(", ")} FROM ${quoteIdent(table)} ORDER BY ${k.orderBy}`;
  const ia = (a.prepare(sql(ka)).raw(true).safeIntegers(true).iterate() as Iterator<unknown[]>);
  const ib = (b.prepare(sql(kb)).raw(true).safeIntegers(true).iterate() as Iterator<unknown[]>);
  const keyOf = (row: unknown[]) => keyIdx.map((i) => row[i]);
  const keyText = (row: unknown[]) => JSON.stringify(keyOf(row), (_k, v) => (typeof v === "bigint" ? Number(v) : Buffer.isBuffer(v) ? v.toString("hex") : v));
  const cmpKeys = (x: unknown[], y: unknown[]) => compareSqlKeys(keyOf(x), keyOf(y));
  let ra = ia.next();
  let rb = ib.next();
  let rowsA = 0;
  let rowsB = 0;
  let differing = 0;
  let onlyA = 0;
  let onlyB = 0;
  let changed = 0;
  const keys: string[] = [];
  const note = (row: unknown[]) => {
    differing++;
    if (keys.length < maxKeys) keys.push(keyText(row));
  };
  const sameColumns = ka.columns.join(",") === kb.columns.join(",");
  while (!ra.done || !rb.done) {
    if (rb.done || (!ra.done && cmpKeys(ra.value, rb.value) < 0)) {
      rowsA++;
      onlyA++;
      note(ra.value as unknown[]);
      ra = ia.next();
    } else if (ra.done || cmpKeys(ra.value, rb.value) > 0) {
      rowsB++;
      onlyB++;
      note(rb.value as unknown[]);
      rb = ib.next();
    } else {
      rowsA++;
      rowsB++;
      const x = (ra.value as unknown[]).map(encodeValue).join("|");
      const y = (rb.value as unknown[]).map(encodeValue).join("|");
      if (x !== y || !sameColumns) {
        changed++;
        note(ra.value as unknown[]);
      }
      ra = ia.next();
      rb = ib.next();
    }
  }
  return { table, rowsA, rowsB, equal: differing === 0 && sameColumns, differingKeys: keys, differing, onlyA, onlyB, changed };
}

/** Orders keys like SQLite's default BINARY collation: NULL < numbers < text < blobs. */
function compareSqlKeys(x: unknown[], y: unknown[]): number {
  for (let i = 0; i < x.length; i++) {
    const c = compareSqlValue(x[i], y[i]);
    if (c !== 0) return c;
  }
  return 0;
}

function rank(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === "number" || typeof v === "bigint") return 1;
  if (typeof v === "string") return 2;
  return 3;
}

function compareSqlValue(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  if (ra === 1) {
    const x = typeof a === "bigint" ? a : Number(a);
    const y = typeof b === "bigint" ? b : Number(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ra === 2) return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string));
  return Buffer.compare(a as Buffer, b as Buffer);
}
