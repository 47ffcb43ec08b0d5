import { describe, it, expect } from "vitest";
import { join, resolve } from "node:path";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { kappa, cliContext } from "./support/cli.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { referenceTotals } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { DataDir, WorkerRegistry, readCheckpoint, remoteQuery } from "../src/views/index.js";
import { startHttpServer } from "../src/cli/http/index.js";
import type { KappaError } from "../src/errors.js";

const SQL = "SELECT user_id, orders, amount FROM totals ORDER BY user_id";
const byUser = (rows: ReturnType<typeof referenceTotals>) => rows.sort((a, b) => a.user_id.localeCompare(b.user_id));

/** Two workers (real processes) holding orders_by_user v1 on one server, both at the head. */
async function twoReplicas(env: TestEnv, procs: WorkerProcess[], count: number, seed: number) {
  const events = await env.appendOrders(count, seed);
  const dirs = ["w1", "w2"].map((w) => new DataDir(join(env.dir, w)));
  for (const [i, w] of ["w1", "w2"].entries()) procs.push(WorkerProcess.start(env.nats.url, dirs[i]!.root, ["--worker-id", w]));
  await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  const files = dirs.map((d) => d.viewFile("orders_by_user", 1));
  await waitFor(() => files.every((f) => readCheckpoint(f) === count), 30_000, "both replicas at the head");
  return { events, dirs, files };
}

/** Waits until some worker's heartbeat reports the version at `seq` (what the default bound compares with). */
async function reported(env: TestEnv, seq: number): Promise<void> {
  const reg = await WorkerRegistry.open(env.nc, env.spec.stream);
  await waitFor(async () => (await reg.list()).some((w) => w.versions.some((v) => v.processor === "orders_by_user" && v.checkpoint >= seq)), 10_000, `a heartbeat at ${seq}`);
}

/** Puts bytes that are not a database at a view file's path; its WAL goes too (its frames would mask the main file). */
function damage(file: string): void {
  writeFileSync(`${file}.garbage`, Buffer.alloc(64 * 1024, 0x5a));
  renameSync(`${file}.garbage`, file);
  for (const f of [`${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
}

describe("remote queries with one broken or lagging replica (two workers)", () => {
  it("a replica-local error (a damaged view file) is retried on the other replica; only the query's own errors are final, with a hint that fits", async () => {
    await using env = await TestEnv.start();
    const procs: WorkerProcess[] = [];
    try {
      const { events, files } = await twoReplicas(env, procs, 3000, 911);
      // w2's view file is replaced under it by bytes that are not a database (its apply thread keeps the old inodes).
      damage(files[1]!);
      const expected = byUser(referenceTotals(events, true));
      const answeredBy = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const a = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: SQL, timeoutMs: 8000 });
        expect(a.rows).toEqual(expected);
        answeredBy.add(a.worker);
      }
      expect([...answeredBy]).toEqual(["w1"]);

      // The query's own fault is final at once (answered by a worker, not given up on at the deadline), and says to check the SQL.
      const bad = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: "SELECT nope FROM totals", timeoutMs: 8000 }).catch((e: KappaError) => e);
      expect(bad).toMatchObject({ code: "QUERY_FAILED", message: expect.stringMatching(/no such column: nope.*answered by w[12]/) });
      expect((bad as KappaError).hint).toMatch(/check the SQL/);
      const refused = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: "DELETE FROM totals", timeoutMs: 8000 }).catch((e: KappaError) => e);
      expect(refused).toMatchObject({ code: "QUERY_REFUSED" });
      // A version the catalog does not have is the query's fault too (the worker checks the catalog, not only its copy).
      const none = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: SQL, version: 9, timeoutMs: 8000 }).catch((e: KappaError) => e);
      expect(none).toMatchObject({ code: "NOT_FOUND", message: expect.stringMatching(/has no version 9.*answered by/) });

      // With both replicas damaged, the error names the damage and does not blame the SQL.
      damage(files[0]!);
      const out = kappa(["--nats", env.nats.url, "query", "orders_by_user", "--remote", "--timeout", "2", SQL]);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/kappa: no replica of orders_by_user answered within 2000 ms: .*(not a database|damaged)/);
      expect(out.stderr).toMatch(/hint: /);
      expect(out.stderr).not.toMatch(/check the SQL/);
    } catch (err) {
      for (const p of procs) console.error(p.output.slice(-2000));
      throw err;
    } finally {
      for (const p of procs) await p.kill();
    }
  }, 120_000);

  it("a lagging replica never answers past the default bound; --max-staleness any lets it; through serve --remote seq never goes backwards", async () => {
    await using env = await TestEnv.start();
    const procs: WorkerProcess[] = [];
    let lock: Database.Database | undefined;
    try {
      const { events, files } = await twoReplicas(env, procs, 3000, 912);
      // A real SQLite write lock held on w2's view file (as a busy lock would): its apply thread cannot commit, so w2 lags.
      lock = new Database(files[1]!);
      lock.exec("BEGIN IMMEDIATE");
      const more = await env.appendOrders(300, 913);
      const head = 3300;
      await waitFor(() => readCheckpoint(files[0]!) === head, 20_000, "w1 at the new head");
      expect(readCheckpoint(files[1]!)).toBe(3000);
      await reported(env, head);
      const expected = byUser(referenceTotals([...events, ...more], true));

      // Default: the lagging replica refuses (it is behind what w1 reported), w1 answers every time.
      for (let i = 0; i < 24; i++) {
        const a = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: SQL, timeoutMs: 8000 });
        expect({ worker: a.worker, seq: a.seq }).toEqual({ worker: "w1", seq: head });
        expect(a.rows).toEqual(expected);
      }
      // Loosened: any replica at any lag may answer, w2 included (at its old seq).
      await waitFor(async () => {
        const a = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: SQL, timeoutMs: 8000, maxStaleness: "any" });
        return a.worker === "w2" && a.seq === 3000;
      }, 20_000, "w2 answering with --max-staleness any");

      // serve --remote: answers never go backwards, with the default bound and with any staleness allowed, while events arrive.
      for (const maxStaleness of [undefined, "any" as const]) {
        const ctx = cliContext(env, { dataDir: join(env.dir, `serve-${maxStaleness ?? "default"}`) });
        await using http = await startHttpServer(ctx, { port: 0, remote: true, ...(maxStaleness ? { maxStaleness } : {}) });
        const seqs: number[] = [];
        const workers = new Set<string>();
        for (let i = 0; i < 30; i++) {
          if (i % 10 === 5) await env.appendOrders(5, 920 + i + (maxStaleness ? 100 : 0));
          const r = await fetch(`${http.url}/views/orders_by_user/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT count(*) AS n FROM totals" }) });
          expect(r.status).toBe(200);
          const body = (await r.json()) as { seq: number; worker: string };
          seqs.push(body.seq);
          workers.add(body.worker);
        }
        for (let i = 1; i < seqs.length; i++) expect(seqs[i], `answer ${i} of ${JSON.stringify(seqs)}`).toBeGreaterThanOrEqual(seqs[i - 1]!);
        if (maxStaleness === undefined) expect(seqs[0]).toBeGreaterThanOrEqual(head);
        await ctx.close();
      }
    } catch (err) {
      for (const p of procs) console.error(p.output.slice(-2000));
      throw err;
    } finally {
      if (lock?.inTransaction) lock.exec("ROLLBACK");
      lock?.close();
      for (const p of procs) await p.kill();
    }
  }, 180_000);
});
