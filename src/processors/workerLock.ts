import { openSync, closeSync, writeSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { KappaError } from "../errors.js";
import { processAlive } from "../views/index.js";


/** Takes the data dir's worker lock (a file holding our PID); a lock left by a dead process is taken over. */
export function acquireWorkerLock(path: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, "utf8") === String(process.pid)) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new KappaError("DATA_DIR_UNWRITABLE", `cannot write to the data directory: ${(err as Error).message}`, { hint: "pass a writable --data-dir (env KAPPA_DATA_DIR)" });
      }
      const pid = Number(readFileSync(path, "utf8"));
      if (pid && pid !== process.pid && processAlive(pid)) {
        throw new KappaError("WORKER_RUNNING", `another worker (pid ${pid}) is using this data directory`, { hint: "stop it first, or pass another --data-dir" });
      }
      rmSync(path, { force: true });
    }
  }
  throw new KappaError("WORKER_LOCK", `could not take the worker lock ${path}`, { hint: "remove the file if no worker is running" });
}
