// Runs read-only queries one at a time in a child process of the QueryPool. SQLite's step cannot be
// interrupted from JavaScript (better-sqlite3 exposes no sqlite3_interrupt or progress handler, and
// worker.terminate() waits for native code), so the pool stops a runaway query by SIGKILLing this process.
// Plain JavaScript, run by plain node (no loader), so it starts fast under tsx, vitest and the CLI.
import Database from "better-sqlite3";

/** SQLite's heap cap for this process (bytes): a huge value or sort fails with SQLITE_NOMEM instead of exhausting memory. */
const HEAP_LIMIT = Number(process.argv[2] ?? 64 * 1024 * 1024);

/** SQLite's process-wide heap limits, read through a throwaway handle. */
function heapLimits() {
  const probe = new Database(":memory:");
  try {
    return JSON.stringify([probe.pragma("hard_heap_limit", { simple: true }), probe.pragma("soft_heap_limit", { simple: true })]);
  } finally {
    probe.close();
  }
}

const setter = new Database(":memory:");
setter.pragma(`hard_heap_limit = ${HEAP_LIMIT}`);
setter.close();
const LIMITS = heapLimits();

/** The statement's first keyword, which alone decides its kind in SQLite's grammar (comments and blanks skipped). */
function firstKeyword(sql) {
  let i = 0;
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i])) i++;
    if (sql.startsWith("--", i)) {
      const nl = sql.indexOf("\n", i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (sql.startsWith("/*", i)) {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else break;
  }
  return /^[A-Za-z]+/.exec(sql.slice(i))?.[0].toLowerCase() ?? "";
}

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

function sizeOf(v) {
  return typeof v === "string" ? v.length + 2 : 8;
}

function tooLarge(maxBytes) {
  return Object.assign(new Error(`the result passed ${maxBytes} bytes`), { code: "KAPPA_RESULT_TOO_LARGE" });
}

function run(req) {
  const db = new Database(req.path, { readonly: true, fileMustExist: true });
  try {
    // The engine, not only the text check, keeps queries read-only: query_only refuses writes on every
    // schema, trusted_schema=OFF keeps functions with side effects out of views and triggers.
    db.pragma("query_only = ON");
    db.pragma("trusted_schema = OFF");
    // Files the caller chose (never the SQL) join as extra schemas; they open read-only like main does.
    for (const [schema, file] of Object.entries(req.attach ?? {})) {
      db.prepare("ATTACH DATABASE ? AS " + JSON.stringify(schema)).run(file);
    }
    // Not a regex over the text: the first token is what SQLite itself reads to pick the statement kind,
    // so PRAGMA (even one that returns rows, such as hard_heap_limit = 1) never runs.
    if (!READ_STATEMENTS.has(firstKeyword(req.sql))) throw refused(`only SELECT, WITH, VALUES and EXPLAIN run here, not ${firstKeyword(req.sql).toUpperCase() || "an empty statement"}`);
    const stmt = db.prepare(req.sql);
    // ATTACH, DETACH and setting PRAGMAs compile as "readonly" but return no rows: refusing non-readers closes them.
    if (!stmt.readonly) throw refused("the statement would change the view");
    if (!stmt.reader) throw refused("the statement returns no rows (ATTACH, DETACH, PRAGMA settings and the like are refused)");
    stmt.safeIntegers(true);
    const read = db.transaction(() => {
      const seq = db.prepare("SELECT seq FROM main.kappa_checkpoint WHERE id = 1").pluck().get();
      const columns = stmt.columns().map((c) => c.name);
      const rows = [];
      let truncated = false;
      let bytes = 0;
      for (const row of stmt.iterate(req.params ?? {})) {
        if (rows.length >= req.limit) {
          truncated = true;
          break;
        }
        const out = {};
        for (const k of columns) {
          const v = toJson(row[k]);
          out[k] = v;
          bytes += k.length + 4 + sizeOf(v);
        }
        if (bytes > req.maxBytes) throw tooLarge(req.maxBytes);
        rows.push(out);
      }
      return { seq: Number(seq), rows, truncated, columns, bytes };
    });
    return read();
  } finally {
    db.close();
  }
}

process.on("message", (req) => {
  let reply;
  try {
    reply = { id: req.id, ok: true, result: run(req) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: { message: err.message, code: err.code, refused: err.refused === true } };
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
