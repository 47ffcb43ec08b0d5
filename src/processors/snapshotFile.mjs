// Copies and checks snapshot files in a child process of the worker. VACUUM INTO, hashing and
// PRAGMA quick_check of a big view take seconds of native code; on the worker's main thread they would stop
// lease renewals, heartbeats and queries for as long. A process (not a thread) can be SIGKILLed mid-statement
// when the worker stops. Plain JavaScript, run by plain node (no loader), so it starts fast anywhere.
//
// node snapshotFile.mjs '<job as JSON>'  → one line of JSON on stdout: the result, or { error, code }.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import Database from "better-sqlite3";

/** SHA-256 of a file's bytes, read in 1 MiB chunks. */
function sha256(path) {
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** What a view file says about itself: its kappa_meta and checkpoint (throws when it is no Kappa view file). */
function describe(db) {
  const tables = new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all());
  for (const t of ["kappa_meta", "kappa_checkpoint"]) if (!tables.has(t)) throw Object.assign(new Error(`not a Kappa view file: it has no ${t} table`), { code: "FOREIGN" });
  const meta = Object.fromEntries(db.prepare("SELECT key, value FROM kappa_meta").all().map((r) => [r.key, r.value]));
  const row = db.prepare("SELECT seq FROM kappa_checkpoint WHERE id = 1").get();
  if (!row) throw Object.assign(new Error("not a Kappa view file: it has no checkpoint row"), { code: "FOREIGN" });
  return { meta, checkpoint: Number(row.seq) };
}

/** A consistent copy of a live view file (one read snapshot: the checkpoint and the rows it covers). */
function copy({ src, dst }) {
  const db = new Database(src, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 10000");
    db.prepare("VACUUM INTO ?").run(dst);
  } finally {
    db.close();
  }
  const out = new Database(dst, { readonly: true, fileMustExist: true });
  let d;
  try {
    d = describe(out);
  } finally {
    out.close();
  }
  return { ...d, sha256: sha256(dst), bytes: statSync(dst).size };
}

/** Checks a downloaded snapshot before it becomes a view file: Kappa's hash, SQLite's quick_check, what it says it is. */
function verify({ path }) {
  const hash = sha256(path);
  let db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const problems = db.prepare("PRAGMA quick_check").pluck().all();
    if (problems.length !== 1 || problems[0] !== "ok") return { sha256: hash, problem: `PRAGMA quick_check: ${problems.slice(0, 3).join("; ")}` };
    return { sha256: hash, ...describe(db) };
  } catch (err) {
    return { sha256: hash, problem: err.code === "FOREIGN" ? err.message : `not a readable SQLite file: ${err.message}` };
  } finally {
    db?.close();
  }
}

try {
  const job = JSON.parse(process.argv[2]);
  const result = job.op === "copy" ? copy(job) : job.op === "verify" ? verify(job) : (() => { throw new Error(`unknown job ${job.op}`); })();
  process.stdout.write(JSON.stringify(result) + "\n");
} catch (err) {
  process.stdout.write(JSON.stringify({ error: err.message, code: err.code ?? null }) + "\n");
  process.exitCode = 1;
}
