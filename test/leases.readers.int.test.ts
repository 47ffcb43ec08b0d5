import { describe, it, expect } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DataDir, ViewWriter, readCheckpoint, readUnlessDeleting, tryExclusiveLock, type ProcessorRecord } from "../src/views/index.js";
import { CheckpointReader } from "../src/cli/http/checkpoints.js";
import { deadLettersOf } from "../src/cli/commands/dlq.js";

/** A real view file of p v<version> at checkpoint `seq`, with one dead letter at `seq`. */
function viewFile(data: DataDir, version: number, seq: number, data_: string): string {
  const path = data.viewFile("p", version);
  const w = ViewWriter.open(path, { processor: "p", version, codeHash: "h" }, []);
  w.commit(seq, () => void w.db.prepare("INSERT INTO kappa_dead_letters VALUES (?, 'order.placed', '2026-01-01T00:00:00Z', ?, ?, 'bad')").run(seq, `e${seq}`, Buffer.from(data_)));
  w.close();
  return path;
}

/** p with v1 live, or (after the swap) v2 live and v1 retired. */
function record(swapped: boolean): ProcessorRecord {
  const v = (version: number, state: "live" | "retired" | "caught-up") => ({ version, codeHash: "h", codeKind: "js", from: "start", subjects: [], state, createdAt: new Date(0).toISOString() }) as ProcessorRecord["versions"][string];
  return { name: "p", live: swapped ? 2 : 1, previousLive: [], nextVersion: 3, versions: { "1": v(1, swapped ? "retired" : "live"), "2": v(2, swapped ? "live" : "caught-up") }, history: [] } as ProcessorRecord;
}

/** Starts a deleter of v<version>'s files in another process; resolves once it holds the lease file. */
async function deleter(viewsDir: string, version: number, holdMs: number, files: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [resolve("test/support/leaseDeleter.mjs"), viewsDir, String(version), String(holdMs), ...files], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((res, rej) => {
    child.stdout!.once("data", () => res());
    child.once("exit", (c) => rej(new Error(`deleter exited with ${c}`)));
  });
  return child;
}

describe("dlq and the status page read under reader leases", () => {
  it("kappa dlq waits for a deleter, then reads the version that is live now instead of the file that went", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-dlq-lease-"));
    let child: ChildProcess | undefined;
    try {
      const data = new DataDir(dir);
      const v1 = viewFile(data, 1, 5, "old");
      viewFile(data, 2, 7, "new");
      // The catalog as dlq sees it: v1 live when it resolves first, then v2 promoted and v1 retired.
      let calls = 0;
      const records = async () => record(calls++ > 0);
      // The worker is removing v1 (retired) right now, and takes a second over it.
      child = await deleter(data.viewsOf("p"), 1, 1000, [v1, `${v1}-wal`, `${v1}-shm`]);
      const got = await deadLettersOf(data, records, "p", { limit: 10 });
      expect(got.version).toBe(2);
      expect(got.deadLetters.map((d) => [d.seq, d.data])).toEqual([[7, "new"]]);
      // Nothing of v1 was reopened while it went: no stray -wal or -shm beside the deleted file.
      expect(readdirSync(data.viewsOf("p")).filter((f) => f.startsWith("v1"))).toEqual([]);
      // A version named by --version that is gone says so, with the hint.
      await expect(deadLettersOf(data, async () => record(false), "p", { version: 1, limit: 10 })).rejects.toMatchObject({ code: "VIEW_MISSING", hint: expect.stringMatching(/--data-dir/) });
    } finally {
      child?.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the status page's checkpoint reads skip a version while its files are being deleted, without waiting", () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-cp-lease-"));
    const reader = new CheckpointReader();
    try {
      const data = new DataDir(dir);
      const path = viewFile(data, 3, 42, "x");
      expect(reader.read(data, "p", 3)).toBe(42);
      // A deleter holds the lease file (as the worker does while it removes a retired version's files).
      const lock = tryExclusiveLock(join(data.viewsOf("p"), ".readers", "v3.lock"));
      expect(lock).not.toBeNull();
      expect(reader.read(data, "p", 3)).toBeNull();
      lock!.release();
      expect(reader.read(data, "p", 3)).toBe(42);
      // The deleter removed the lease file meanwhile and a new one is made: the reader locks the new one.
      rmSync(join(data.viewsOf("p"), ".readers", "v3.lock"));
      const again = tryExclusiveLock(join(data.viewsOf("p"), ".readers", "v3.lock"));
      expect(reader.read(data, "p", 3)).toBeNull();
      // `kappa status` reads once, the same way.
      expect(readUnlessDeleting(data.viewsOf("p"), 3, () => readCheckpoint(path))).toBeNull();
      again!.release();
      expect(readUnlessDeleting(data.viewsOf("p"), 3, () => readCheckpoint(path))).toBe(42);
      expect(existsSync(path)).toBe(true);
      // A version this data dir does not hold gets no lease file at all.
      expect(reader.read(data, "p", 9)).toBeNull();
      expect(existsSync(join(data.viewsOf("p"), ".readers", "v9.lock"))).toBe(false);
    } finally {
      reader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
