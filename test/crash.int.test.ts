import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { rmSync, readdirSync, existsSync } from "node:fs";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { pidAlive } from "./support/dev.js";
import { kappa } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";
import { seededRandom } from "../src/processors/random.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");
const KILLS = Number(process.env.KAPPA_KILLS ?? 20);

describe("faults the platform survives", () => {
  it(`ends with the clean digest after ${KILLS} SIGKILLs of the worker during a long replay`, async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(KILLS * 10_000, 101);
    await deployModule(env.nc, env.spec, V2);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    const rnd = seededRandom("kills");
    const atKill: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const before = readCheckpoint(file) ?? 0;
      const w = WorkerProcess.start(env.server.url, env.dataDir.root);
      try {
        // Kill only once this run has committed something, a random moment later: mid-replay on any machine speed.
        await waitFor(() => (readCheckpoint(file) ?? 0) > before, 60_000, `progress in run ${i}`);
        await new Promise((r) => setTimeout(r, rnd() * 60));
        expect(w.exited, w.output).toBe(false); // the kill below lands on a running worker
      } finally {
        await w.kill("SIGKILL");
      }
      atKill.push(readCheckpoint(file) ?? 0);
    }
    await using last = WorkerProcess.start(env.server.url, env.dataDir.root);
    await waitFor(() => readCheckpoint(file) === events.length, 120_000, "final catch-up");
    await last.kill("SIGTERM");
    expect(atKill.at(-1)!).toBeLessThan(events.length); // every kill landed before the end of the replay
    expect(new Set(atKill).size).toBe(KILLS); // and each after fresh progress
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals(events, true)));
  }, 600_000);

  it("rides out nats-server being killed during replay and during live following; queries answer meanwhile", async () => {
    await using env = await TestEnv.start();
    const early = await env.appendOrders(2000, 110);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const events = [...early, ...(await env.appendOrders(100_000, 111))];
    await deployModule(env.nc, env.spec, V2);
    const f1 = env.dataDir.viewFile("orders_by_user", 1);
    const f2 = env.dataDir.viewFile("orders_by_user", 2);
    await waitFor(() => (readCheckpoint(f2) ?? 0) > 1000, 30_000, "replay of v2 under way");
    // 1. during replay
    await env.server.kill();
    expect(pidAlive(env.server.pid)).toBe(false);
    expect(readCheckpoint(f2)!).toBeLessThan(events.length);
    // While NATS is down: queries answer from SQLite (the live v1), status says NATS is unreachable.
    const q = kappa(["--nats", env.server.url, "--data-dir", env.dataDir.root, "--json", "query", "orders_by_user", "SELECT count(*) AS n FROM totals"]);
    expect(q.stderr).toBe("");
    expect(q.code).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({ processor: "orders_by_user", version: 1 });
    const st = kappa(["--nats", env.server.url, "--data-dir", env.dataDir.root, "status"]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/NATS is unreachable/);
    expect(st.stdout).toMatch(/orders_by_user {2}\(live: v1\)/);
    const restarted = await env.server.restart();
    try {
      await waitFor(() => readCheckpoint(f2) === events.length && readCheckpoint(f1) === events.length, 60_000, "replay resumed after restart");
      // 2. during live following
      await restarted.kill();
      expect(pidAlive(restarted.pid)).toBe(false);
      await new Promise((r) => setTimeout(r, 500));
      const again = await restarted.restart();
      try {
        const more = await waitFor(async () => env.appendOrders(500, 112).catch(() => undefined), 30_000, "append after restart");
        const all = [...events, ...more];
        await waitFor(() => readCheckpoint(f1) === all.length && readCheckpoint(f2) === all.length, 60_000, "live following resumed");
        expect(digestFile(f1).digest).toBe(referenceDigest(referenceTotals(all, false)));
        expect(digestFile(f2).digest).toBe(referenceDigest(referenceTotals(all, true)));
      } finally {
        await again.kill();
      }
    } finally {
      await restarted.kill();
    }
  }, 180_000);

  it("rebuilds every live view by itself after all SQLite files and the code cache are deleted", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(5000, 121);
    const w = await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]!.state === "caught-up");
    const f1 = env.dataDir.viewFile("orders_by_user", 1);
    const f2 = env.dataDir.viewFile("orders_by_user", 2);
    await waitFor(() => readCheckpoint(f1) === 5000 && readCheckpoint(f2) === 5000, 10_000, "both at head");
    const before = [digestFile(f1).digest, digestFile(f2).digest];
    expect(before).toEqual([referenceDigest(referenceTotals(events, false)), referenceDigest(referenceTotals(events, true))]);
    await w.close();
    rmSync(env.dataDir.root, { recursive: true, force: true });
    expect(existsSync(f1)).toBe(false);
    await env.startWorker();
    await waitFor(() => readCheckpoint(f1) === 5000 && readCheckpoint(f2) === 5000, 30_000, "rebuilt");
    expect([digestFile(f1).digest, digestFile(f2).digest]).toEqual(before);
    expect(readdirSync(env.dataDir.root + "/code").length).toBeGreaterThan(0);
  });

  it("retries transient SQLite errors (a locked view file) with backoff, reports them, and skips nothing", async () => {
    await using env = await TestEnv.start();
    const first = await env.appendOrders(1000, 131);
    const log: string[] = [];
    await env.startWorker(env.dataDir, (l) => log.push(l), { busyTimeoutMs: 50 });
    await deployModule(env.nc, env.spec, V2);
    const file = env.dataDir.viewFile("orders_by_user", 1);
    await waitFor(() => readCheckpoint(file) === 1000, 10_000, "v1 at head");
    const locker = new Database(file);
    locker.exec("BEGIN EXCLUSIVE");
    const second = await env.appendOrders(1000, 132);
    // Reported, and retried (with backoff) more than once while the lock holds.
    await waitFor(() => log.filter((l) => /database is locked.*retrying/.test(l)).length >= 3, 20_000, "busy reported and retried");
    locker.exec("COMMIT");
    locker.close();
    await waitFor(() => readCheckpoint(file) === 2000, 20_000, "caught up after the lock");
    expect(digestFile(file).digest).toBe(referenceDigest(referenceTotals([...first, ...second], true)));
  });
});
