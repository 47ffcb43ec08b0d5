import { createHash } from "node:crypto";
import Database, { type Database as Db } from "better-sqlite3";

/** The digest of one table: row count and SHA-256 of its rows in key order. */
export interface TableDigest {
  table: string;
  rows: number;
  digest: string;
}

/** The content digest of a view: every user table (not `kappa_*`), rows in key order; beside it, what Kappa keeps for the user. */
export interface ViewDigest {
  digest: string;
  checkpoint: number;
  tables: TableDigest[];
  /** Dead letters, late events and window/synopsis state: users see them too (`kappa dlq`, `late`, window results). */
  platform: { digest: string; tables: TableDigest[] };
}

/** Kappa's tables whose rows users can see, digested beside the user tables. */
export const PLATFORM_TABLES = ["kappa_dead_letters", "kappa_late_events", "kappa_state"] as const;

/** The user tables of a view file, sorted by name. */
export function userTables(db: Db): string[] {
  return (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'kappa\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[]);
}

/** Columns of a table and the ORDER BY that puts rows in key order (primary key, else every column). */
export function keyOrder(db: Db, table: string): { columns: string[]; keyColumns: string[]; orderBy: string } {
  const info = db.prepare(`SELECT name, pk FROM pragma_table_info(?)`).all(table) as { name: string; pk: number }[];
  const columns = info.map((c) => c.name);
  const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const keyColumns = pk.length > 0 ? pk : columns;
  return { columns, keyColumns, orderBy: keyColumns.map(quoteIdent).join(", ") };
}

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Canonical text of one SQL value: type-tagged so 1, 1.0, '1' and x'31' all differ. */
export function encodeValue(v: unknown): string {
  if (v === null || v === undefined) return "n";
  if (typeof v === "bigint") return `i${v}`;
  if (typeof v === "number") return Number.isInteger(v) ? `i${v}` : `r${v}`;
  if (typeof v === "string") return `t${v.length}:${v}`;
  if (Buffer.isBuffer(v)) return `b${v.toString("hex")}`;
  return `?${String(v)}`;
}

/** Digest of one table, read inside the caller's transaction. */
export function tableDigest(db: Db, table: string): TableDigest {
  const { columns, orderBy } = keyOrder(db, table);
  const h = createHash("sha256");
  h.update(`table ${table}\ncolumns ${columns.join(",")}\n`);
  let rows = 0;
  const stmt = db.prepare(`SELECT * FROM ${quoteIdent(table)} ORDER BY ${orderBy}`).raw(true).safeIntegers(true);
  for (const row of stmt.iterate() as Iterable<unknown[]>) {
    rows++;
    h.update(row.map(encodeValue).join("|"));
    h.update("\n");
  }
  return { table, rows, digest: h.digest("hex") };
}

/** Digest of a whole view at one consistent snapshot. */
export function digestDb(db: Db): ViewDigest {
  return db.transaction(() => {
    const checkpoint = Number(db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck().get() ?? 0);
    const tables = userTables(db).map((t) => tableDigest(db, t));
    const h = createHash("sha256");
    for (const t of tables) h.update(`${t.table}:${t.digest}\n`);
    // An empty or absent platform table adds nothing, so a reference built without them compares equal.
    const present = new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]);
    const platform = PLATFORM_TABLES.filter((t) => present.has(t)).map((t) => tableDigest(db, t)).filter((t) => t.rows > 0);
    const p = createHash("sha256");
    for (const t of platform) p.update(`${t.table}:${t.digest}\n`);
    return { digest: h.digest("hex"), checkpoint, tables, platform: { digest: p.digest("hex"), tables: platform } };
  })();
}

/** Digest of a view file, opened read-only. */
export function digestFile(path: string): ViewDigest {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return digestDb(db);
  } finally {
    db.close();
  }
}
