// Runs one read-only query at a time on a view file, in a worker thread the caller can terminate on timeout.
// Plain JavaScript so it loads the same way under tsx, vitest and the bundled CLI.
import { parentPort } from "node:worker_threads";
import Database from "better-sqlite3";

function toJson(v) {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Buffer.isBuffer(v)) return v.toString("base64");
  return v;
}

parentPort.on("message", (req) => {
  let db;
  try {
    db = new Database(req.path, { readonly: true, fileMustExist: true });
    db.pragma("query_only = ON");
    const stmt = db.prepare(req.sql);
    if (!stmt.readonly) throw Object.assign(new Error("the statement would change the view"), { refused: true });
    if (!stmt.reader) throw Object.assign(new Error("the statement returns no rows"), { refused: true });
    stmt.safeIntegers(true);
    const read = db.transaction(() => {
      const seq = db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").pluck().get();
      const rows = [];
      let truncated = false;
      for (const row of stmt.iterate(req.params ?? {})) {
        if (rows.length >= req.limit) {
          truncated = true;
          break;
        }
        const out = {};
        for (const k of Object.keys(row)) out[k] = toJson(row[k]);
        rows.push(out);
      }
      return { seq: Number(seq), rows, truncated, columns: stmt.columns().map((c) => c.name) };
    });
    parentPort.postMessage({ id: req.id, ok: true, result: read() });
  } catch (err) {
    parentPort.postMessage({ id: req.id, ok: false, error: { message: err.message, code: err.code, refused: err.refused === true } });
  } finally {
    db?.close();
  }
});
