import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import Database from "better-sqlite3";
import { InputError, KappaError, NotFoundError } from "../errors.js";
import { keyOrder, quoteIdent, userTables } from "./digest.js";
import { csvSink, kindOf, ndjsonSink, parquetSink, type ExportFormat, type TableSink } from "./exportFormats.js";
import { takeLease } from "./leases.js";
import { validateProcessorName, type DataDir } from "./paths.js";
import { targetVersion, type RecordSource } from "./query.js";

/** What to export. */
export interface ExportRequest {
  processor: string;
  /** A version other than the live one. */
  version?: number;
  format: ExportFormat;
  /** A file when one table is exported, else a directory that gets one file per table. */
  out: string;
  /** Only this table (else every table of the view). */
  table?: string;
  /** The stream the view was built from, recorded in the metadata. */
  stream: string;
  /** Rows per chunk (and per Parquet row group); default 65,536. */
  chunkRows?: number;
  /** CSV only: write text as it is, also text a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first). */
  csvRaw?: boolean;
}

/** One exported table. */
export interface ExportedTable {
  table: string;
  file: string;
  rows: number;
  columns: string[];
  /** CSV: cells (header included) that got a leading `'` because a spreadsheet would run them as formulas. */
  prefixed?: number;
}

/** What was exported, and the snapshot it was taken from. */
export interface ExportResult {
  processor: string;
  version: number;
  /** The view's checkpoint in the snapshot: every row reflects exactly the events up to this sequence. */
  seq: number;
  format: ExportFormat;
  exportedAt: string;
  tables: ExportedTable[];
  /** The sidecar or manifest file with this metadata (CSV, NDJSON, several tables). */
  metadataFile?: string;
  /** CSV only: `"prefixed"` when text that would run as a formula got a leading `'`, `"raw"` when it was written as it is. */
  csvFormulas?: "prefixed" | "raw";
}

const EXT: Record<ExportFormat, string> = { csv: "csv", ndjson: "ndjson", parquet: "parquet" };

/** A table's file name inside --out: characters that could leave the directory (`/`, `..`, NUL) are %-encoded. */
export function tableFileName(table: string, format: ExportFormat): string {
  const safe = table.replace(/[^A-Za-z0-9_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `${safe}.${EXT[format]}`;
}

/** Where each table goes: `out` itself for one table, else `<out>/<table>.<ext>`. */
function plan(req: ExportRequest, tables: string[]): { dir: string | null; files: Map<string, string> } {
  if (tables.length === 1) {
    if (existsSync(req.out) && statSync(req.out).isDirectory()) return { dir: null, files: new Map([[tables[0]!, join(req.out, tableFileName(tables[0]!, req.format))]]) };
    return { dir: null, files: new Map([[tables[0]!, req.out]]) };
  }
  if (existsSync(req.out) && !statSync(req.out).isDirectory()) {
    throw new InputError(`${req.out} is a file, but ${req.processor} has ${tables.length} tables (${tables.join(", ")})`, { hint: "export one with --table <name>, or give --out a directory", code: "BAD_OUT" });
  }
  return { dir: req.out, files: new Map(tables.map((t) => [t, join(req.out, tableFileName(t, req.format))])) };
}

/**
 * Writes one consistent snapshot of a view: every table (or one) read inside one SQLite read transaction,
 * with the version and the sequence it reflects in the file's metadata (Parquet key-value metadata; a
 * `.kappa.json` sidecar for CSV and NDJSON; a `kappa-export.json` manifest for several tables). Files
 * appear under their names only once complete.
 */
export async function exportView(dataDir: DataDir, records: RecordSource, req: ExportRequest): Promise<ExportResult> {
  validateProcessorName(req.processor);
  if (req.csvRaw && req.format !== "csv") throw new InputError("--csv-raw applies to --format csv", { hint: "drop --csv-raw, or export --format csv" });
  const rec = await records(req.processor);
  if (!rec) throw new NotFoundError(`processor ${req.processor} is not deployed`, { hint: "`kappa status` lists what exists" });
  const version = targetVersion(rec, req.version);
  const path = dataDir.viewFile(req.processor, version);
  const release = takeLease(dataDir.viewsOf(req.processor), version);
  let db: Database.Database | undefined;
  const temps: string[] = [];
  try {
    if (!existsSync(path)) {
      throw new KappaError("VIEW_MISSING", `view file of ${req.processor} v${version} is not in ${dataDir.root}`, { hint: "is `kappa run` (or `kappa dev`) running with this --data-dir? It builds the file from the log" });
    }
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma("query_only = ON");
    const exportedAt = new Date().toISOString();
    // One read transaction: the checkpoint and every table come from the same snapshot, while the worker keeps writing.
    db.prepare("BEGIN").run();
    const seq = Number(db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck().get() ?? 0);
    const all = userTables(db);
    if (req.table !== undefined && !all.includes(req.table)) {
      throw new NotFoundError(`${req.processor} v${version} has no table ${req.table}`, { hint: all.length ? `tables: ${all.join(", ")}` : "the view has no tables yet" });
    }
    const tables = req.table !== undefined ? [req.table] : all;
    if (tables.length === 0) throw new InputError(`${req.processor} v${version} has no tables to export`, { hint: "check the processor's schema" });
    const { dir, files } = plan(req, tables);
    if (dir) mkdirSync(dir, { recursive: true });
    const meta = (table: string | null): Record<string, string> => ({
      "kappa.processor": req.processor,
      "kappa.version": String(version),
      "kappa.seq": String(seq),
      "kappa.stream": req.stream,
      ...(table !== null ? { "kappa.table": table } : {}),
      "kappa.exported_at": exportedAt,
    });
    const out: ExportedTable[] = [];
    for (const table of tables) {
      const file = files.get(table)!;
      const tmp = `${file}.tmp-${process.pid}`;
      temps.push(tmp);
      out.push({ table, file, ...writeTable(db, table, tmp, req.format, meta(table), req.chunkRows ?? 65_536, req.csvRaw === true) });
    }
    db.prepare("COMMIT").run();
    for (const t of out) renameSync(`${t.file}.tmp-${process.pid}`, t.file);
    temps.length = 0;
    const csvFormulas = req.format === "csv" ? { csvFormulas: req.csvRaw ? ("raw" as const) : ("prefixed" as const) } : {};
    const result: ExportResult = { processor: req.processor, version, seq, format: req.format, exportedAt, tables: out, ...csvFormulas };
    const sidecar = dir ? join(dir, "kappa-export.json") : req.format === "parquet" ? undefined : `${out[0]!.file}.kappa.json`;
    if (sidecar) {
      const body = { processor: req.processor, version, seq, stream: req.stream, format: req.format, ...csvFormulas, exportedAt, tables: out.map((t) => ({ table: t.table, file: dir ? basename(t.file) : t.file, rows: t.rows, columns: t.columns, ...(t.prefixed !== undefined ? { prefixed: t.prefixed } : {}) })) };
      writeFileSync(sidecar, JSON.stringify(body, null, 2) + "\n");
      result.metadataFile = sidecar;
    }
    return result;
  } finally {
    for (const t of temps) rmSync(t, { force: true });
    db?.close();
    release();
  }
}

/** Writes one table of the open snapshot in chunks; memory stays at one chunk. */
function writeTable(db: Database.Database, table: string, file: string, format: ExportFormat, meta: Record<string, string>, chunkRows: number, csvRaw: boolean): { rows: number; columns: string[]; prefixed?: number } {
  const q = quoteIdent(table);
  const cols = (db.prepare("SELECT name FROM pragma_table_info(?) ORDER BY cid").pluck().all(table) as string[]);
  let sink: TableSink;
  if (format === "parquet") {
    // One pass over the table for every column's storage classes, so the schema is known before the first row.
    const classes = db.prepare(`SELECT ${cols.map((c, i) => `group_concat(DISTINCT typeof(${quoteIdent(c)})) AS c${i}`).join(", ")} FROM ${q}`).get() as Record<string, string | null>;
    sink = parquetSink(file, cols.map((name, i) => ({ name, kind: kindOf(new Set((classes[`c${i}`] ?? "").split(",").filter(Boolean))) })), meta);
  } else {
    sink = format === "csv" ? csvSink(file, cols, csvRaw) : ndjsonSink(file, cols);
  }
  // Key order (a table without a primary key is a rowid table: insertion order).
  const hasKey = (db.prepare("SELECT count(*) FROM pragma_table_info(?) WHERE pk > 0").pluck().get(table) as number) > 0;
  const order = hasKey ? keyOrder(db, table).orderBy : "rowid";
  const stmt = db.prepare(`SELECT ${cols.map(quoteIdent).join(", ")} FROM ${q} ORDER BY ${order}`).raw(true).safeIntegers(true);
  let rows = 0;
  let chunk: unknown[][] = [];
  for (const r of stmt.iterate() as Iterable<unknown[]>) {
    chunk.push(r);
    if (chunk.length >= chunkRows) {
      sink.write(chunk);
      rows += chunk.length;
      chunk = [];
    }
  }
  sink.write(chunk);
  rows += chunk.length;
  sink.close();
  return { rows, columns: cols, ...(sink.prefixed !== undefined ? { prefixed: sink.prefixed } : {}) };
}
