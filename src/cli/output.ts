import Table from "cli-table3";
import { InputError, KappaError, NotFoundError, messageOf } from "../errors.js";
import { csvCell } from "../views/index.js";

/** Prints data as JSON on stdout (the only thing on stdout under --json). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
}

/** Renders rows as a table for people. */
export function renderTable(head: string[], rows: unknown[][]): string {
  const t = new Table({ head, style: { head: process.stdout.isTTY ? ["cyan"] : [], border: process.stdout.isTTY ? ["grey"] : [] } });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? "" : typeof c === "object" ? JSON.stringify(c) : String(c))));
  return t.toString();
}

/** Renders records as CSV (RFC 4180 quoting); text a spreadsheet would run as a formula gets a leading `'` unless `raw`. */
export function renderCsv(columns: string[], rows: Record<string, unknown>[], raw = false): string {
  const cell = (v: unknown) => csvCell(v, raw);
  return [columns.map(cell).join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n");
}

/** Renders an answer's rows in one of the output formats (`csvRaw`: CSV text exactly as it is, formulas too). */
export function renderAnswer(a: { rows: Record<string, unknown>[]; columns: string[] }, format: string, csvRaw = false): string {
  switch (format) {
    case "json":
      return JSON.stringify(a.rows, null, 2);
    case "ndjson":
      return a.rows.map((r) => JSON.stringify(r)).join("\n");
    case "csv":
      return renderCsv(a.columns, a.rows, csvRaw);
    case "table":
      return renderTable(a.columns, a.rows.map((r) => a.columns.map((c) => r[c])));
    default:
      throw new InputError(`unknown format ${format}`, { hint: "use table, json, ndjson or csv" });
  }
}

/** What a local answer says about itself besides its rows. */
export interface AnswerReport {
  /** Under --json (with no --format): the fields that come before `rows`. */
  json: Record<string, unknown>;
  /** Which views, versions and sequences answered, for the line under a table. */
  from: string;
  /** The --limit that cut the rows. */
  limit?: number;
  /** Set when the catalog was unreachable and the local copy resolved the versions. */
  fallback?: string;
  /** `--csv-raw`: CSV text as it is, also text that would run as a formula. */
  csvRaw?: boolean;
}

/**
 * Prints a local query's answer: JSON under --json (unless --format), else the format; then, for people,
 * one line on stderr — the summary under a table, or a note when --limit cut the rows. False when it
 * printed no such line.
 */
export function printAnswer(json: boolean, format: string | undefined, a: { rows: Record<string, unknown>[]; columns: string[]; truncated?: boolean }, report: AnswerReport): boolean {
  if (json && !format) printJson({ ...report.json, rows: a.rows, ...(a.truncated ? { truncated: true } : {}) });
  else console.log(renderAnswer(a, format ?? "table", report.csvRaw === true));
  if (!json && (format ?? "table") === "table") {
    const cut = a.truncated ? ` (cut at --limit ${report.limit}; raise it to see more)` : "";
    process.stderr.write(`${a.rows.length} row${a.rows.length === 1 ? "" : "s"} from ${report.from}${cut}${report.fallback ? " (NATS unreachable: used the local catalog copy)" : ""}\n`);
    return true;
  }
  if (a.truncated) {
    process.stderr.write(`note: rows cut at --limit ${report.limit} (raise --limit to see more)\n`);
    return true;
  }
  return false;
}

/**
 * The one exit-code rule: 2 when the command as typed must change (a bad flag or value, a name that does
 * not exist, an action the current state refuses: InputError, NotFoundError, BAD_* codes); 1 when it
 * failed for a reason outside the command (NATS unreachable, a timeout, a version that failed while
 * running, a conflict), so the same command may work later. Usage errors from the parser are 2 as well.
 */
export function exitCodeOf(err: unknown, code = err instanceof KappaError ? err.code : "ERROR"): 1 | 2 {
  if (err instanceof InputError || err instanceof NotFoundError) return 2;
  return code.startsWith("BAD_") || COMMAND_MUST_CHANGE.has(code) ? 2 : 1;
}

/** Codes that are not InputErrors but whose fix is in the command or its files: retrying as typed cannot work. */
const COMMAND_MUST_CHANGE = new Set([
  "NOT_FOUND",
  "CODE_LOAD_FAILED", // the module's top-level code throws: fix the file
  "TLS_FILE", // --tls-cert/--tls-key name a file that cannot be read
  "STREAM_NOT_APPEND_ONLY", // needs --stream or --allow-unsafe-log
  "STREAM_REPLICAS", // needs a different --replicas
  "NO_FROZEN_VERSION", // needs --no-build dropped
  "TOKEN_REQUIRED", // needs --token (writes over HTTP, or a bind beyond loopback)
]);

/** One line for stderr: the reason and the hint. Under --json, the error as JSON on stdout. */
export function reportError(err: unknown, json: boolean): number {
  const fsWhy = fileSystemProblem(err);
  const code = err instanceof KappaError ? err.code : fsWhy ? "DATA_DIR_UNWRITABLE" : "ERROR";
  const hint = err instanceof KappaError ? err.hint : fsWhy?.hint;
  const message = fsWhy?.message ?? messageOf(err);
  if (json) printJson({ error: code, message, ...(hint ? { hint } : {}) });
  else process.stderr.write(`kappa: ${message}${hint ? `\n  hint: ${hint}` : ""}\n`);
  if (process.env.KAPPA_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return exitCodeOf(err, code);
}

/** Human-friendly count. */
export function fmtNum(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  return n.toLocaleString("en-US");
}

/** Human-friendly duration from seconds. */
export function fmtEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "-";
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${Math.round((seconds % 3600) / 60)}m`;
}

const FS_PROBLEMS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  ENOTDIR: "a part of the path is not a directory",
  EISDIR: "is a directory",
};

/** Turns a raw file-system error into a sentence about the data directory. */
function fileSystemProblem(err: unknown): { message: string; hint: string } | undefined {
  const e = err as NodeJS.ErrnoException;
  const why = e?.code ? FS_PROBLEMS[e.code] : undefined;
  if (!why) return undefined;
  return {
    message: `cannot write ${e.path ?? "the data directory"}: ${why}`,
    hint: e.code === "ENOSPC" ? "free disk space, or pass --data-dir on another disk" : "pass a writable --data-dir (env KAPPA_DATA_DIR)",
  };
}
