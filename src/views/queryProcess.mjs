// Runs read-only queries one at a time in a child process of the QueryPool. SQLite's step cannot be
// interrupted from JavaScript (better-sqlite3 exposes no sqlite3_interrupt or progress handler, and
// worker.terminate() waits for native code), so the pool stops a runaway query by SIGKILLing this process.
// Plain JavaScript, run by plain node (no loader), so it starts fast under tsx, vitest and the CLI.
import { statSync } from "node:fs";
import Database from "better-sqlite3";
import { statementKind } from "./sqlLexer.mjs";

/** The memory cap for SQLite (bytes). The pool's RLIMIT_DATA is what enforces it: this build compiles memory statistics out, so SQLite ignores hard_heap_limit. */
const HEAP_LIMIT = Number(process.argv[2] ?? 64 * 1024 * 1024);
/** Off only in tests (QueryPool `statementCheck: false`), to show that the handle checks behind it hold on their own. */
const STATEMENT_CHECK = process.argv[3] !== "--no-statement-check";

// One in-memory handle sets SQLite's process-wide heap limits (advisory here, see above) and reads them back
// after each query, so a statement that changed them retires the process.
const probe = new Database(":memory:");
probe.pragma(`hard_heap_limit = ${HEAP_LIMIT}`);
const readLimits = ["hard_heap_limit", "soft_heap_limit", "temp_store_directory"].map((p) => probe.prepare(`PRAGMA ${p}`).pluck());
const heapLimits = () => readLimits.map((s) => String(s.get())).join(",");
const LIMITS = heapLimits();

/** Open view handles by path, kept between queries; a file replaced under the same path (a rebuild) gets a new one. */
const handles = new Map();
const MAX_HANDLES = 16;

// A kept handle serves every later client, so a setting one statement changed would hold for all of them
// (SQLite applies a pragma's setting while it compiles the statement, so even EXPLAIN PRAGMA changes it).
// These are read back after every query (about 50 µs), and a handle whose values moved is closed.
const HANDLE_SETTINGS = [
  "query_only", "trusted_schema", "temp_store", "reverse_unordered_selects", "automatic_index", "cache_size", "cache_spill",
  "busy_timeout", "cell_size_check", "writable_schema", "recursive_triggers", "foreign_keys", "defer_foreign_keys",
  "ignore_check_constraints", "legacy_alter_table", "read_uncommitted", "secure_delete", "short_column_names",
  "full_column_names", "count_changes", "threads", "analysis_limit", "max_page_count", "synchronous", "locking_mode",
];
// case_sensitive_like cannot be read back: LIKE itself tells.
const SETTINGS_SQL = `SELECT ${HANDLE_SETTINGS.map((p) => `(SELECT * FROM pragma_${p})`).join(", ")}, 'a' LIKE 'A'`;

/** A handle's settings as one string, to compare with what they were when it was opened. */
function settingsOf(h) {
  return JSON.stringify([h.settings.get(), h.mmap.get()]);
}

function openView(path) {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  // The engine, not only the text check, keeps queries read-only: query_only refuses writes on every
  // schema, trusted_schema=OFF keeps functions with side effects out of views and triggers.
  db.pragma("query_only = ON");
  db.pragma("trusted_schema = OFF");
  // Sorts, DISTINCT and GROUP BY spill to temp files by default: a runaway ORDER BY would write to disk until
  // its timeout. In memory they count against the heap cap and fail with RESULT_TOO_LARGE instead.
  db.pragma("temp_store = MEMORY");
  return db;
}

function dropHandle(path) {
  handles.get(path)?.db.close();
  handles.delete(path);
}

function viewHandle(path) {
  let ino;
  try {
    ino = statSync(path).ino;
  } catch (err) {
    dropHandle(path); // retired and deleted: do not keep the old file alive
    throw err;
  }
  const h = handles.get(path);
  if (h && h.ino === ino) {
    h.usedAt = Date.now();
    return h.db;
  }
  h?.db.close();
  handles.delete(path);
  if (handles.size >= MAX_HANDLES) {
    for (const old of handles.values()) old.db.close();
    handles.clear();
  }
  const db = openView(path);
  const kept = { db, ino, usedAt: Date.now(), settings: db.prepare(SETTINGS_SQL).raw(), mmap: db.prepare("PRAGMA mmap_size").pluck() };
  kept.expected = settingsOf(kept);
  handles.set(path, kept);
  return db;
}

/** Closes the kept handle of `path` when a statement changed its settings, so the next query opens a fresh one. */
function checkHandle(path) {
  const h = handles.get(path);
  if (!h) return;
  let same = false;
  try {
    same = settingsOf(h) === h.expected;
  } finally {
    if (!same) dropHandle(path);
  }
}

// Handles unused for a while are closed, so a retired file's space is given back soon after it is deleted.
const IDLE_MS = 10_000;
setInterval(() => {
  for (const [path, h] of handles) if (Date.now() - h.usedAt > IDLE_MS) dropHandle(path);
}, IDLE_MS).unref();

/** What the statement is, as SQLite reads it: EXPLAIN counts only before a SELECT, WITH or VALUES (see sqlLexer.mjs). */
const READ_STATEMENTS = new Set(["select", "with", "values", "explain"]);

function refused(message) {
  return Object.assign(new Error(message), { refused: true });
}

/** A value as JSON can carry it, with its approximate size in the answer. */
function toJson(v) {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Buffer.isBuffer(v)) return v.toString("base64");
  return v;
}

/** A raw value's size as JSON, measured before it is converted, so a huge blob is refused before its base64 copy exists. */
function sizeOf(v) {
  if (typeof v === "string") return v.length + 2;
  if (Buffer.isBuffer(v)) return Math.ceil(v.length / 3) * 4 + 2;
  return 8;
}

function tooLarge(maxBytes) {
  return Object.assign(new Error(`the result passed ${maxBytes} bytes`), { code: "KAPPA_RESULT_TOO_LARGE" });
}

function tooManyRows(maxRows) {
  return Object.assign(new Error(`the result has more than ${maxRows} rows`), { code: "KAPPA_TOO_MANY_ROWS" });
}

function run(req) {
  // With attached files the handle is this query's own; a single file's handle is kept for the next query.
  const attached = req.attach !== undefined && Object.keys(req.attach).length > 0;
  const db = attached ? openView(req.path) : viewHandle(req.path);
  try {
    // Files the caller chose (never the SQL) join as extra schemas; they open read-only like main does.
    for (const [schema, file] of Object.entries(req.attach ?? {})) {
      db.prepare("ATTACH DATABASE ? AS " + JSON.stringify(schema)).run(file);
    }
    // Not a regex over the text: the first tokens are what SQLite itself reads to pick the statement kind,
    // so PRAGMA (even one that returns rows, such as hard_heap_limit = 1) never runs. Nor EXPLAIN PRAGMA:
    // SQLite applies a pragma's setting while it compiles the statement, EXPLAIN or not.
    const kind = STATEMENT_CHECK ? statementKind(req.sql) : "select";
    if (!READ_STATEMENTS.has(kind)) throw refused(`only SELECT, WITH, VALUES and EXPLAIN before one of them run here, not ${kind.toUpperCase() || "an empty statement"}`);
    const stmt = db.prepare(req.sql);
    // ATTACH, DETACH and setting PRAGMAs compile as "readonly" but return no rows: refusing non-readers closes them.
    if (!stmt.readonly) throw refused("the statement would change the view");
    if (!stmt.reader) throw refused("the statement returns no rows (ATTACH, DETACH, PRAGMA settings and the like are refused)");
    stmt.safeIntegers(true);
    const read = db.transaction(() => {
      // Reading each file's checkpoint first starts its read snapshot: the rows below come from the same ones.
      const seqs = {};
      for (const schema of req.seqSchemas ?? []) seqs[schema] = Number(db.prepare(`SELECT seq FROM ${JSON.stringify(schema)}.kappa_checkpoint WHERE id = 1`).pluck().get() ?? 0);
      const seq = req.seqSchemas ? Math.min(...Object.values(seqs)) : db.prepare("SELECT seq FROM main.kappa_checkpoint WHERE id = 1").pluck().get();
      const columns = stmt.columns().map((c) => c.name);
      const rows = [];
      let truncated = false;
      let bytes = 0;
      for (const row of stmt.iterate(req.params ?? {})) {
        // limit is the caller's own cut (the first rows, flagged); maxRows is the server's cap, an error.
        if (req.limit !== undefined && rows.length >= req.limit) {
          truncated = true;
          break;
        }
        if (req.maxRows !== undefined && rows.length >= req.maxRows) throw tooManyRows(req.maxRows);
        const out = {};
        for (const k of columns) {
          bytes += k.length + 4 + sizeOf(row[k]);
          if (bytes > req.maxBytes) throw tooLarge(req.maxBytes);
          out[k] = toJson(row[k]);
        }
        rows.push(out);
      }
      return { seq: Number(seq), rows, truncated, columns, bytes, ...(req.seqSchemas ? { seqs } : {}) };
    });
    return read();
  } finally {
    if (attached) db.close();
  }
}

process.on("message", (req) => {
  let reply;
  try {
    reply = { id: req.id, ok: true, result: run(req) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: { message: err.message, code: err.code, refused: err.refused === true } };
    // After a failure (out of memory, a refused statement) the next query starts on a fresh handle.
    dropHandle(req.path);
  }
  try {
    checkHandle(req.path);
  } catch {
    // unreadable settings: the handle is closed already, the next query opens a fresh one
  }
  // A statement such as `PRAGMA hard_heap_limit = 1` returns rows and passes the checks, yet changes this
  // process for every later query: a process whose limits moved answers, then leaves for a fresh one.
  const moved = heapLimits() !== LIMITS;
  if (moved) reply.retire = true;
  process.send(reply, () => {
    if (moved) process.exit(0);
  });
});

// The pool closes the channel when it goes away; a query process never outlives it.
process.on("disconnect", () => process.exit(0));
