import { describe, it, expect } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { pidAlive } from "./support/dev.js";
import { referenceTotals } from "./support/reference.js";
import { deployModule, verifyVersion, diffVersions } from "../src/processors/index.js";
import { promote, retire, takeLease, deleteUnread } from "../src/views/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");
const NAME = "orders_by_user";

/** Spawns a process holding a reader lease; resolves once it holds it. */
async function leaseHolder(viewsDir: string, version: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [resolve("test/support/leaseHolder.mjs"), viewsDir, String(version)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((res, rej) => {
    child.stdout!.once("data", () => res());
    child.once("exit", (c) => rej(new Error(`lease holder exited with ${c}`)));
  });
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGKILL");
  await gone;
  expect(pidAlive(child.pid!)).toBe(false);
}

/** Wraps a command so it runs as a process whose PID means nothing here: its own PID namespace, at a number no process of ours has. */
function inOwnPidNamespace(cmd: string[]): string[] {
  if (spawnSync("unshare", ["--pid", "--fork", "true"]).status !== 0) return cmd; // no namespaces here: the lock must hold all the same
  let pid = 40;
  while (pidAlive(pid)) pid++;
  // In the new namespace sh is 1 and each fork takes the next number: pid-2 throwaway children, then the command.
  const script = `i=0; while [ $i -lt ${pid - 2} ]; do true & i=$((i+1)); done; wait; "$@"`;
  return ["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", script, "sh", ...cmd];
}

describe("reader leases and retired files", () => {
  it("keeps a file while a reader in another process holds a lease, and deletes it once that reader is killed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-lease-"));
    const file = join(dir, "v3.sqlite");
    writeFileSync(file, "x");
    const children: ChildProcess[] = [];
    try {
      const reader = await leaseHolder(dir, 3);
      children.push(reader);
      expect(deleteUnread(dir, 3, [file])).toBe(false);
      expect(existsSync(file)).toBe(true);
      // A lease on another version does not hold this one; one in this process does.
      const mine = takeLease(dir, 3);
      await killed(reader); // the kernel drops a dead reader's lock: nothing stale is left to clean up
      expect(deleteUnread(dir, 3, [file])).toBe(false);
      mine();
      expect(deleteUnread(dir, 3, [file])).toBe(true);
      expect(existsSync(file)).toBe(false);
      expect(readdirSync(join(dir, ".readers"))).toEqual([]);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets a long query on a version finish with the right answer while that version is retired, and deletes its file after", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(400, 81);
    const log: string[] = [];
    await env.startWorker(env.dataDir, (l) => log.push(l), { sweepMs: 100 });
    await deployModule(env.nc, env.spec, V1);
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord(NAME, (r) => r.live === 1 && r.versions["2"]!.state === "caught-up");
    const file = env.dataDir.viewFile(NAME, 1);
    const readers = join(env.dataDir.viewsOf(NAME), ".readers");
    const orders = [...referenceTotals(events).values()].reduce((s, t) => s + t.orders, 0);

    // A long query on v1 from a `kappa query` whose PID this worker cannot see.
    const sql = "SELECT (SELECT sum(orders) FROM totals) AS orders, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT count(*) FROM c) AS n";
    const [cmd, ...args] = inOwnPidNamespace([process.execPath, resolve("bin/kappa.js"), "--nats", env.server.url, "--data-dir", env.dataDir.root, "query", NAME, sql, "--format", "json", "--timeout", "120"]);
    const query = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    query.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    query.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const done = new Promise<number | null>((r) => query.once("exit", (c) => r(c)));
    try {
      await waitFor(() => existsSync(readers) && readdirSync(readers).some((n) => n.startsWith("v1.")), 30_000, "the query's lease");
      const cat = await env.catalog();
      await promote(cat, NAME, 2, { expectedLive: 1 });
      await retire(cat, NAME, 1);
      // The worker has seen the retirement and looked at the file at least once.
      await waitFor(() => log.some((l) => l.startsWith(`${NAME}/1: retired`)) || !existsSync(file), 30_000, "the worker to try the delete");
      expect(existsSync(file)).toBe(true);
      expect(query.exitCode).toBeNull(); // still reading
      expect(await done, err).toBe(0);
      expect(JSON.parse(out)).toEqual([{ orders, n: 20000000 }]);
      await waitFor(() => !existsSync(file), 10_000, "the file to go once the query is done");
      expect(existsSync(`${file}-wal`)).toBe(false);
      expect(log.filter((l) => l === `${NAME}/1: retired, file deleted`)).toHaveLength(1);
    } finally {
      if (query.exitCode === null && query.signalCode === null) query.kill("SIGKILL");
    }
  });

  it("kappa verify holds a reader lease while the view is open, so a retire waits for it; verify and diff let go after", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(20_000, 77);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord(NAME, (r) => r.versions["1"]?.state === "live");
    await waitFor(async () => (await (await env.catalog()).stats(NAME, 1))?.checkpoint === 20_000, 30_000, "v1 at the head");
    const dir = env.dataDir.viewsOf(NAME);
    // Probes that delete nothing but the lease file: false whenever a reader holds the lease.
    const heldWhile = async <T>(work: Promise<T>): Promise<{ held: boolean; result: T }> => {
      let done = false;
      let held = false;
      const watched = work.finally(() => (done = true));
      while (!done) {
        if (!deleteUnread(dir, 1, [])) held = true;
        await new Promise((r) => setTimeout(r, 2));
      }
      return { held, result: await watched };
    };
    const verify = await heldWhile(verifyVersion(env.nc, env.spec, env.dataDir, NAME, 1));
    expect(verify.result.ok).toBe(true);
    expect(verify.held).toBe(true);
    // diff of aligned versions does its work in one synchronous step, so only its letting go is observable here.
    expect((await diffVersions(env.dataDir, NAME, 1, 1)).tables.every((t) => t.equal)).toBe(true);
    expect(deleteUnread(dir, 1, [])).toBe(true); // both let go
  });
});
