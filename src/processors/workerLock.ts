import { readFileSync } from "node:fs";
import { KappaError, messageOf } from "../errors.js";
import { tryExclusiveLock, writeAtomicallyText } from "../views/index.js";

/** The data dir's worker lock, held for as long as the worker (or `kappa dev`) runs. */
export interface WorkerLock {
  /** Lets go of the lock (idempotent). */
  release(): void;
}

/**
 * Takes the data dir's worker lock: an exclusive file lock the kernel drops when its holder dies, so a
 * lock left by a crash is never "stale" and two workers starting at the same instant cannot both win.
 * The PID file beside it only names the holder in the refusal.
 */
export function acquireWorkerLock(path: string): WorkerLock {
  let lock;
  try {
    lock = tryExclusiveLock(path);
  } catch (err) {
    // A file-system error (ENOTDIR, EACCES…) goes up as it is: the CLI turns those into a sentence about the path.
    if (!String((err as { code?: string }).code ?? "").startsWith("SQLITE_")) throw err;
    throw new KappaError("DATA_DIR_UNWRITABLE", `cannot write to the data directory: ${messageOf(err)}`, { hint: "pass a writable --data-dir (env KAPPA_DATA_DIR)", cause: err });
  }
  if (!lock) {
    let pid = "";
    try {
      pid = readFileSync(`${path}.pid`, "utf8").trim();
    } catch {
      // the holder has not written it yet
    }
    throw new KappaError("WORKER_RUNNING", `another worker${/^\d+$/.test(pid) ? ` (pid ${pid})` : ""} is using this data directory`, {
      hint: "stop it first, or pass another --data-dir",
    });
  }
  try {
    // Whole or not at all: a contender refused at this very moment reads the old PID or ours, never an emptied file.
    writeAtomicallyText(`${path}.pid`, String(process.pid));
  } catch {
    // only used for the message above
  }
  return lock;
}
