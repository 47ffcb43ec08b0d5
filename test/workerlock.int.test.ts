import { describe, it, expect } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { DataDir } from "../src/views/index.js";
import { pidAlive } from "./support/dev.js";

const CONTENDER = resolve("test/support/lockContender.mjs");

/** Starts a contender process; resolves with its verdict line ("got …" or "refused …"), or all it printed if it exited without one. */
function contender(lockPath: string, startAt: number, holdMs: number, children: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, [CONTENDER, lockPath, String(startAt), String(holdMs)], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  return new Promise((res) => {
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) res(out.trim());
    });
    child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    child.once("exit", () => res(out.trim()));
  });
}

describe("one worker per data dir", () => {
  it("lets exactly one of several workers starting at the same instant take a data dir whose lock a killed worker left behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-lock-"));
    const lockPath = new DataDir(dir).workerLock;
    const children: ChildProcess[] = [];
    try {
      // A worker that dies holding the lock leaves its files behind.
      const first = spawn(process.execPath, [CONTENDER, lockPath, "0", "60000"], { stdio: ["ignore", "pipe", "ignore"] });
      children.push(first);
      await new Promise<void>((res) => first.stdout!.once("data", () => res()));
      const died = new Promise<void>((r) => first.once("exit", () => r()));
      first.kill("SIGKILL");
      await died;
      expect(pidAlive(first.pid!)).toBe(false);
      expect(existsSync(lockPath)).toBe(true);

      const startAt = Date.now() + 2500; // time enough for every process to load the code, mostly
      // The winner holds the lock until the test ends, so a contender that loads late on a busy machine
      // still meets it held, rather than finding it free after the winner left.
      const outs = await Promise.all(Array.from({ length: 4 }, () => contender(lockPath, startAt, 120_000, children)));
      expect(outs.filter((o) => o === "got"), outs.join(" | ")).toHaveLength(1);
      // The others are refused as a running worker (naming its PID once it has written it), never an error.
      expect(outs.filter((o) => /^refused another worker( \(pid \d+\))? is using this data directory$/.test(o)), outs.join(" | ")).toHaveLength(3);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps a lock whose holder kept no reference to it through a garbage collection", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-lock-"));
    const lockPath = new DataDir(dir).workerLock;
    const children: ChildProcess[] = [];
    try {
      // The holder drops the lock object and collects garbage before it says "got".
      const holder = spawn(process.execPath, ["--expose-gc", CONTENDER, lockPath, "0", "120000"], { stdio: ["ignore", "pipe", "pipe"] });
      children.push(holder);
      let said = "";
      await new Promise<void>((res, rej) => {
        holder.stdout!.on("data", (b: Buffer) => (said += b.toString()).includes("\n") && res());
        holder.once("exit", (code) => rej(new Error(`holder exited (${code}) before taking the lock: ${said}`)));
      });
      expect(said.trim()).toBe("got");
      expect(await contender(lockPath, 0, 0, children)).toMatch(/^refused another worker \(pid \d+\) is using this data directory$/);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets exactly one of two workers started at once in one process take the data dir, stale lock or not, and frees it when that one stops", async () => {
    await using env = await TestEnv.start();
    // A lock file left by a worker that is gone (the old format: just a PID).
    mkdirSync(env.dataDir.root, { recursive: true });
    writeFileSync(env.dataDir.workerLock, "999999");
    const both = await Promise.allSettled([env.startWorker(), env.startWorker()]);
    expect(both.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = both.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason.message).toMatch(/another worker \(pid \d+\) is using this data directory/);
    const w = (both.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<TestEnv["startWorker"]>>>).value;
    await w.close();
    const again = await waitFor(() => env.startWorker(), 5000, "the lock to be free");
    expect(again.runners.size).toBe(0);
  });
});
