import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { KappaError } from "../errors.js";

const SCRIPT = fileURLToPath(new URL("./snapshotFile.mjs", import.meta.url));

/** What a copy of a view file holds, from the copy itself. */
export interface CopiedFile {
  meta: Record<string, string>;
  checkpoint: number;
  sha256: string;
  bytes: number;
}

/** What a check of a downloaded snapshot found: `problem` when it must not be used. */
export interface CheckedFile {
  sha256: string;
  problem?: string;
  meta?: Record<string, string>;
  checkpoint?: number;
}

type Job = { op: "copy"; src: string; dst: string } | { op: "verify"; path: string };

/**
 * Runs a snapshot job (copy or check a view file) in a child process, off the worker's main thread: a copy
 * of a big view takes seconds of native code that would otherwise stop lease renewals and heartbeats.
 * `signal` kills the process (a worker that stops does not wait for a copy).
 */
export function runSnapshotJob(job: { op: "copy"; src: string; dst: string }, signal?: AbortSignal): Promise<CopiedFile>;
export function runSnapshotJob(job: { op: "verify"; path: string }, signal?: AbortSignal): Promise<CheckedFile>;
export function runSnapshotJob(job: Job, signal?: AbortSignal): Promise<CopiedFile | CheckedFile> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new KappaError("SNAPSHOT_ABORTED", "the snapshot job was stopped"));
    const child = spawn(process.execPath, [SCRIPT, JSON.stringify(job)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const abort = () => child.kill("SIGKILL");
    signal?.addEventListener("abort", abort, { once: true });
    child.once("error", (e) => reject(new KappaError("SNAPSHOT_PROCESS", `cannot start the snapshot process: ${e.message}`, { hint: "check that node can run here (`node src/processors/snapshotFile.mjs`)", cause: e })));
    child.once("close", (code, sig) => {
      signal?.removeEventListener("abort", abort);
      if (signal?.aborted) return reject(new KappaError("SNAPSHOT_ABORTED", "the snapshot job was stopped"));
      let r: { error?: string; code?: string | null } & Record<string, unknown>;
      try {
        r = JSON.parse(out.trim().split("\n").at(-1) ?? "");
      } catch {
        return reject(new KappaError("SNAPSHOT_PROCESS", `the snapshot process ended (${sig ?? `exit ${code}`}) without a result${err ? `: ${err.trim().split("\n").at(-1)}` : ""}`, { hint: "see the worker's log; the view file itself is untouched" }));
      }
      if (r.error !== undefined) return reject(new KappaError("SNAPSHOT_FAILED", `cannot copy the view file: ${r.error}`, { hint: "check the data dir's free space and the worker's log; the view file itself is untouched" }));
      resolve(r as unknown as CopiedFile | CheckedFile);
    });
  });
}
