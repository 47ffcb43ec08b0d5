import { closeSync, openSync, writeSync } from "node:fs";
import { ParquetWriter, type ColumnSource } from "hyparquet-writer";
import { fileWriter } from "hyparquet-writer";
import { InputError } from "../errors.js";

/** The formats `kappa export` writes. */
export type ExportFormat = "csv" | "ndjson" | "parquet";

/** Checks a --format value. */
export function parseExportFormat(text: string): ExportFormat {
  if (text === "csv" || text === "ndjson" || text === "parquet") return text;
  throw new InputError(`unknown export format ${text}`, { hint: "use --format csv, ndjson or parquet", code: "BAD_FORMAT" });
}

/** How a column is written to Parquet, from the SQLite storage classes its values have in the snapshot. */
export type ColumnKind = "INT64" | "DOUBLE" | "STRING" | "BYTE_ARRAY";

/** The Parquet type for a column whose values have these SQLite storage classes (`typeof()`). */
export function kindOf(classes: Set<string>): ColumnKind {
  const c = new Set([...classes].filter((x) => x !== "null"));
  if (c.size === 0) return "STRING";
  if ([...c].every((x) => x === "integer")) return "INT64";
  if ([...c].every((x) => x === "integer" || x === "real")) return "DOUBLE";
  if ([...c].every((x) => x === "blob")) return "BYTE_ARRAY";
  return "STRING"; // mixed text and numbers: every value as text, the way SQLite would cast it
}

/** Writes one table's rows, in chunks, to one file. */
export interface TableSink {
  /** Takes a chunk of rows (arrays in column order, values as better-sqlite3 gives them with safe integers). */
  write(rows: unknown[][]): void;
  /** Completes the file. */
  close(): void;
  /** CSV: how many cells got a leading `'` because they would run as formulas. */
  readonly prefixed?: number;
}

/** A value as JSON can carry it: 64-bit integers as numbers when exact, else as strings; blobs as base64. */
function jsonValue(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Buffer.isBuffer(v)) return v.toString("base64");
  return v;
}

function textValue(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (Buffer.isBuffer(v)) return v.toString("base64");
  return String(v);
}

/** A buffered file written with plain writes (one per ~1 MiB). */
function textFile(path: string): { put(s: string): void; close(): void } {
  const fd = openSync(path, "w");
  let buf: string[] = [];
  let size = 0;
  const flush = () => {
    if (buf.length) writeSync(fd, buf.join(""));
    buf = [];
    size = 0;
  };
  return {
    put(s) {
      buf.push(s);
      size += s.length;
      if (size > 1 << 20) flush();
    },
    close() {
      flush();
      closeSync(fd);
    },
  };
}

/** Text a spreadsheet would run as a formula: `=`, `+`, `-`, `@` first (also after blanks), or a tab or carriage return first (OWASP). */
const FORMULA = /^(?:[\t\r]|\s*[=+\-@])/;
/** A plain decimal number (a big integer or a negative one carried as text): a spreadsheet reads it as a number, never a formula. */
const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** True for text a spreadsheet would run as a formula (and that is not a plain number). */
export function runsAsFormula(text: string): boolean {
  return FORMULA.test(text) && !PLAIN_NUMBER.test(text);
}

/**
 * One CSV cell, RFC 4180 quoted. Unless `raw`, text that a spreadsheet would run as a formula gets a
 * leading `'` (OWASP's advice against CSV injection), and a `;` or tab is quoted too (the separator in
 * some locales). Numbers are numbers, never changed, and so is text that is a plain number; blobs are
 * base64, which cannot hold a formula call.
 */
export function csvCell(v: unknown, raw = false): string {
  let s: string;
  if (typeof v === "string") s = raw || !runsAsFormula(v) ? v : `'${v}`;
  else if (v !== null && typeof v === "object" && !Buffer.isBuffer(v)) s = JSON.stringify(v);
  else s = textValue(v);
  return /[",\n\r]/.test(s) || (!raw && /[;\t]/.test(s)) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** CSV (RFC 4180 quoting) with a header line; text that would run as a formula is neutralised unless `raw` (see csvCell). */
export function csvSink(path: string, columns: string[], raw = false): TableSink {
  const f = textFile(path);
  let prefixed = 0;
  const cell = (v: unknown) => {
    if (!raw && typeof v === "string" && runsAsFormula(v)) prefixed++;
    return csvCell(v, raw);
  };
  f.put(columns.map(cell).join(",") + "\n");
  return {
    write(rows) {
      for (const r of rows) f.put(r.map(cell).join(",") + "\n");
    },
    close: () => f.close(),
    get prefixed() {
      return prefixed;
    },
  };
}

/** One JSON object per line, keyed by column name. */
export function ndjsonSink(path: string, columns: string[]): TableSink {
  const f = textFile(path);
  return {
    write(rows) {
      for (const r of rows) {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < columns.length; i++) o[columns[i]!] = jsonValue(r[i]);
        f.put(JSON.stringify(o) + "\n");
      }
    },
    close: () => f.close(),
  };
}

function parquetValue(kind: ColumnKind, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (kind) {
    case "INT64":
      return typeof v === "bigint" ? v : BigInt(v as number);
    case "DOUBLE":
      return Number(v);
    case "BYTE_ARRAY":
      return new Uint8Array(v as Buffer);
    case "STRING":
      return textValue(v);
  }
}

/** Parquet, one row group per chunk, with `metadata` as the file's key-value metadata. */
export function parquetSink(path: string, columns: { name: string; kind: ColumnKind }[], metadata: Record<string, string>): TableSink {
  const writer = new ParquetWriter({
    writer: fileWriter(path),
    schema: [
      { name: "root", num_children: columns.length },
      ...columns.map((c) => ({
        name: c.name,
        type: c.kind === "STRING" ? ("BYTE_ARRAY" as const) : c.kind,
        ...(c.kind === "STRING" ? { converted_type: "UTF8" as const } : {}),
        repetition_type: "OPTIONAL" as const,
      })),
    ],
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    createdBy: "kappa export",
  });
  return {
    write(rows) {
      if (rows.length === 0) return;
      const columnData: ColumnSource[] = columns.map((c, i) => ({ name: c.name, data: rows.map((r) => parquetValue(c.kind, r[i])) as ColumnSource["data"] }));
      void writer.write({ columnData, rowGroupSize: rows.length });
    },
    close: () => writer.finish(),
  };
}
