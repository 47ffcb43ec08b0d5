import { InputError, KappaError, UnavailableError } from "../errors.js";

/** Bytes as a short human figure for messages: 16 MiB, 512 KiB, 900 B. */
export function fmtBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KiB`;
  return `${n} B`;
}

/** A query ran past its time limit (counted from when it arrived, queue included) and its process was killed. */
export class QueryTimeoutError extends KappaError {
  constructor(ms: number, queuedMs = 0) {
    super("QUERY_TIMEOUT", `query stopped after ${ms} ms${queuedMs > 0 ? ` (${queuedMs} ms of it waiting for a free query process)` : ""}`, {
      hint: queuedMs > ms / 2 ? "the server is busy: retry later, or raise --query-processes" : "add a LIMIT or a WHERE, or raise --timeout (timeoutMs over HTTP)",
    });
  }
}

/** Every query process is busy and the queue is full: the caller should retry later (HTTP 503 with Retry-After). */
export class QueryBusyError extends UnavailableError {
  constructor(queued: number) {
    super("QUERY_BUSY", `the query server is busy: ${queued} queries are already waiting`, {
      hint: "retry in a moment; an operator can raise `kappa serve --query-processes` or `--query-queue`",
    });
  }
}

/** The answer would pass the result byte or row cap (or SQLite's memory cap for one query): refused, not truncated. */
export class ResultTooLargeError extends InputError {
  constructor(cap: number, kind: "result" | "memory" | "rows" = "result", why = "") {
    super(MESSAGES[kind](cap, why), { code: "RESULT_TOO_LARGE", hint: HINTS[kind] });
  }
}

const MESSAGES = {
  result: (cap: number) => `the result is larger than the cap of ${fmtBytes(cap)} per query`,
  memory: (cap: number, why: string) => `${why || "a value or the query's working memory needs"} more than the memory cap of ${fmtBytes(cap)} per query`,
  rows: (cap: number) => `the result has more than ${cap} rows, the cap per query`,
};

const HINTS = {
  result: "select fewer rows or smaller columns (LIMIT, WHERE, substr()), or raise the cap: `kappa query --max-bytes <n>`, `kappa serve --max-result-bytes <n>`, or maxBytes in an HTTP request",
  memory: "select smaller values (substr(), length()) or fewer rows, or raise the cap: `kappa query --query-memory <bytes>`, `kappa serve --query-memory <bytes>`",
  rows: "add a LIMIT or a WHERE, ask for the first rows with `kappa query --limit <n>` (limit over HTTP; the answer then says truncated), or raise the cap: `kappa query --max-rows <n>`, `kappa serve --max-result-rows <n>`",
};

/** How a failure reported by a query process reads to the caller. */
export function queryError(e: { message: string; code?: string; refused?: boolean }, caps: { maxBytes: number; maxRows: number; memoryBytes: number }): Error {
  if (e.code === "KAPPA_RESULT_TOO_LARGE") return new ResultTooLargeError(caps.maxBytes);
  if (e.code === "KAPPA_TOO_MANY_ROWS") return new ResultTooLargeError(caps.maxRows, "rows");
  if (e.code === "SQLITE_NOMEM" || e.code === "SQLITE_TOOBIG") return new ResultTooLargeError(caps.memoryBytes, "memory");
  if (e.refused || e.code === "SQLITE_READONLY" || /not authorized/.test(e.message)) {
    return new InputError(`query refused: ${e.message}`, { hint: "queries are read-only: one SELECT, WITH, VALUES or EXPLAIN; no extensions, ATTACH or PRAGMA settings", code: "QUERY_REFUSED" });
  }
  if (e.code === "SQLITE_CANTOPEN" || e.code === "ENOENT") return new KappaError("VIEW_MISSING", `view file is missing: ${e.message}`, { hint: "the worker has not built it in this data dir yet (is `kappa run` running with the same --data-dir?)" });
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(e.code ?? "")) {
    return new KappaError("VIEW_CORRUPT", `the view file is damaged: ${e.message}`, { hint: "the query is fine: the file on this machine is not a whole view. Stop the worker, delete the view file (it rebuilds from the log), or ask another replica (--remote)" });
  }
  const missing = /Missing named parameter "([^"]+)"/i.exec(e.message);
  if (missing) {
    const p = missing[1]!;
    return new InputError(`the query needs the parameter ${p}`, { hint: `pass \`--param ${p}=<value>\` (over HTTP: "params": {"${p}": …}, or ?${p}=… on a named query)`, code: "MISSING_PARAM" });
  }
  if (/no such table|no such column|syntax error|parameter|incomplete input|no such function|more than one statement|ambiguous column/i.test(e.message)) {
    return new InputError(`query failed: ${e.message}`, { hint: "check the SQL; list tables with SELECT name FROM sqlite_schema", code: "QUERY_FAILED" });
  }
  // Not an error SQLite raises for the text of a statement: the file, the disk or the process.
  return new KappaError("QUERY_FAILED", `query failed: ${e.message}`, { hint: "retry; if it persists, check the worker's log and `kappa status` for this view" });
}
