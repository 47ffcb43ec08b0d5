import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { ServeProcess } from "./support/serve.js";
import { cmdlineOf, descendants, treeCpuSeconds } from "./support/procs.js";
import { DevProcess } from "./support/dev.js";
import { kappa } from "./support/cli.js";
import { tmpdir } from "node:os";
import { deployModule } from "../src/processors/index.js";
import { digestFile } from "../src/views/index.js";

const BIN = resolve("bin/kappa.js");
const V1 = resolve("examples/orders/orders_by_user.ts");
const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) AS n FROM c";

let env: TestEnv;
let serve: ServeProcess;

async function query(body: Record<string, unknown>, url = serve.url): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(`${url}/views/orders_by_user/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

/** PIDs of live query processes whose environment carries `tag` (children inherit it), from /proc. */
function queryProcesses(tag: string): number[] {
  const script = resolve("src/views/queryProcess.mjs");
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(script) && readFileSync(`/proc/${d}/environ`, "utf8").includes(tag);
    } catch {
      return false;
    }
  }).map(Number);
}

/** Marks the processes this file's CLI runs start (and their children), so tests running beside it do not count. */
const TAG = `KAPPA_TEST_TAG=limits-${process.pid}-${Date.now()}`;

/** The process has exited (no /proc entry, or a zombie waiting to be reaped). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] === "Z";
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One value from a server's /metrics. */
async function metricOf(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(text.split("\n").find((l) => l.startsWith(`${name} `))?.split(" ")[1]);
}

/** The query process under `root` once the server says one is busy (every server here runs one). */
function busyQueryProcess(url: string, root: number): Promise<number> {
  const script = resolve("src/views/queryProcess.mjs");
  return waitFor(async () => (await metricOf(url, "kappa_query_processes_busy")) === 1 && descendants(root).find((p) => cmdlineOf(p).includes(script)), 15_000, "a query process running the query");
}

/** Waits until a process tree uses next to no CPU over a second: a runaway still running would use about a second of it. */
function cpuSettles(root: number): Promise<true> {
  return waitFor(async () => {
    const a = treeCpuSeconds(root);
    await sleep(1000);
    return treeCpuSeconds(root) - a < 0.2;
  }, 20_000, `the CPU time of ${root} and its children to stop growing`);
}

/** Runs the real CLI; kills it by PID if it has not exited after `killAfterMs`. */
function cli(args: string[], killAfterMs: number): Promise<{ code: number | null; signal: string | null; ms: number; stderr: string }> {
  return new Promise((res) => {
    const started = Date.now();
    const [k, v] = TAG.split("=");
    const child = spawn(process.execPath, [BIN, "--nats", env.server.url, "--data-dir", env.dataDir.root, ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, [k!]: v } });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const guard = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      res({ code, signal, ms: Date.now() - started, stderr });
    });
  });
}

beforeAll(async () => {
  env = await TestEnv.start();
  await env.appendOrders(300, 5);
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  serve = await ServeProcess.start(["--nats", env.server.url, "--data-dir", env.dataDir.root], ["--query-processes", "1", "--query-queue", "1", "--max-event-streams", "2"]);
}, 60_000);

afterAll(async () => {
  await serve?.stop();
  await env?.close();
});

describe("queries that cannot hurt: kappa serve and the CLI", () => {
  it("kills a runaway query at its timeout: the server's CPU time (from /proc) stops growing and it keeps answering", async () => {
    const t0 = Date.now();
    const running = query({ sql: RUNAWAY, timeoutMs: 1000 });
    const runner = await busyQueryProcess(serve.url, serve.pid);
    const r = await running;
    expect(r.status).toBe(504);
    expect(r.json).toMatchObject({ error: "QUERY_TIMEOUT", message: "query stopped after 1000 ms" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    // The process that ran it is gone (killed, not asked), and nothing else spins in its place.
    await waitFor(() => gone(runner), 10_000, `query process ${runner} killed`);
    await cpuSettles(serve.pid);
    const ok = await query({ sql: "SELECT count(*) AS n FROM totals" });
    expect(ok.status).toBe(200);
    expect(ok.json.rows[0].n).toBeGreaterThan(0);
    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    expect(metrics).toMatch(/^kappa_query_killed_total [1-9]/m);
    expect(metrics).toMatch(/^kappa_query_processes_busy 0/m);
  });

  it("counts the timeout from arrival, queue included, and answers 503 with Retry-After when the queue is full", async () => {
    let firstDone = false;
    const first = query({ sql: RUNAWAY, timeoutMs: 4000 }).finally(() => (firstDone = true));
    await waitFor(async () => (await metricOf(serve.url, "kappa_query_processes_busy")) === 1, 15_000, "the first query running in the only query process");
    const second = query({ sql: "SELECT 1 AS x", timeoutMs: 800 }); // waits in the queue (cap 1)
    await waitFor(async () => (await metricOf(serve.url, "kappa_query_queue_length")) === 1, 15_000, "the second query in the queue");
    const third = await query({ sql: "SELECT 2 AS x" });
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(third.json).toMatchObject({ error: "QUERY_BUSY" });
    expect(third.json.hint).toMatch(/retry/);
    const s = await second;
    expect(s.status).toBe(504);
    expect(s.json.message).toMatch(/query stopped after 800 ms \(\d+ ms of it waiting for a free query process\)/);
    expect(firstDone).toBe(false); // it timed out in the queue, not after the first finished
    expect((await first).status).toBe(504);
    expect((await query({ sql: "SELECT 3 AS x" })).json.rows).toEqual([{ x: 3 }]);
  });

  it("refuses answers over the byte cap with RESULT_TOO_LARGE naming the cap; SELECT randomblob(1e9) gets it too, never an out-of-memory", async () => {
    const huge = await query({ sql: "SELECT randomblob(1e9) AS b" });
    expect(huge.status).toBe(400);
    expect(huge.json.error).toBe("RESULT_TOO_LARGE");
    expect(huge.json.message).toMatch(/cap of 256 MiB/);
    expect(huge.json.hint).toMatch(/--query-memory/);
    const wide = await query({ sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100) SELECT x, hex(randomblob(100000)) AS h FROM c" });
    expect(wide.status).toBe(400);
    expect(wide.json).toMatchObject({ error: "RESULT_TOO_LARGE", message: "the result is larger than the cap of 16 MiB per query" });
    expect(wide.json.hint).toMatch(/--max-result-bytes/);
    const asked = await query({ sql: "SELECT user_id FROM totals", maxBytes: 100 });
    expect(asked.json).toMatchObject({ error: "RESULT_TOO_LARGE", message: "the result is larger than the cap of 100 B per query" });
    expect((await query({ sql: "SELECT 1 AS x", maxBytes: 1 << 30 })).json.message).toMatch(/maxBytes must be an integer from 1 to 16777216/);
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
  });

  it("refuses more rows than --max-result-rows with RESULT_TOO_LARGE naming the cap; limit asks for fewer and cuts", async () => {
    const many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100001) SELECT x FROM c";
    const over = await query({ sql: many });
    expect(over.status).toBe(400);
    expect(over.json).toMatchObject({ error: "RESULT_TOO_LARGE", message: "the result has more than 100000 rows, the cap per query" });
    expect(over.json.hint).toMatch(/--max-result-rows/);
    const cut = await query({ sql: many, limit: 5 });
    expect(cut.json).toMatchObject({ truncated: true, rows: [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }, { x: 5 }] });
    const ceiling = await query({ sql: many, limit: 100_001 });
    expect(ceiling.status).toBe(400);
    expect(ceiling.json.message).toMatch(/limit must be an integer from 1 to 100000/);
    expect(ceiling.json.hint).toMatch(/--max-result-rows/);
  });

  it("a server killed with SIGKILL mid-query takes its query processes with it (pdeathsig)", async () => {
    const doomed = await ServeProcess.start(["--nats", env.server.url, "--data-dir", env.dataDir.root], ["--query-processes", "1"]);
    let children: number[] = [];
    try {
      const runaway = query({ sql: RUNAWAY, timeoutMs: 60_000 }, doomed.url).catch(() => null);
      await busyQueryProcess(doomed.url, doomed.pid);
      children = descendants(doomed.pid);
      expect(children.length).toBeGreaterThan(0);
      doomed.child.kill("SIGKILL");
      await runaway;
      await waitFor(() => children.every(gone), 10_000, "query processes gone with the server");
    } finally {
      await doomed.stop();
      for (const pid of children.filter((p) => !gone(p))) process.kill(pid, "SIGKILL"); // a leak must not outlive the test (these PIDs are its own)
    }
  });

  it("reads quotes, comments and names as SQLite does: a quote inside a quoted name hides nothing, and the view file stays byte-identical", async () => {
    const file = env.dataDir.viewFile("orders_by_user", 1);
    const before = digestFile(file).digest;
    // This fooled the old check (its quote inside "a'" opened a string); the engine refusing it too is in query.engine.int.
    const r = await query({ sql: `SELECT 1 AS "a'", load_extension('/x.so') --'` });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: "QUERY_REFUSED", message: "loading extensions is not allowed" });
    expect(digestFile(file).digest).toBe(before);
  });

  it("refuses EXPLAIN before anything but a read, and a later client's handle keeps its settings", async () => {
    // SQLite applies a pragma's setting while compiling it: on the one shared query process these would hold for everyone.
    for (const p of ["temp_store = FILE", "query_only = OFF", "trusted_schema = ON", "case_sensitive_like = ON"]) {
      const r = await query({ sql: `EXPLAIN /* -- */ PRAGMA ${p}` });
      expect(r.status, p).toBe(400);
      expect(r.json).toMatchObject({ error: "QUERY_REFUSED", message: expect.stringMatching(/^EXPLAIN is allowed only before SELECT, WITH or VALUES/) });
    }
    const later = await query({ sql: "SELECT (SELECT * FROM pragma_temp_store) AS temp_store, (SELECT * FROM pragma_query_only) AS query_only, (SELECT * FROM pragma_trusted_schema) AS trusted_schema, 'a' LIKE 'A' AS like_nocase" });
    expect(later.json.rows).toEqual([{ temp_store: 2, query_only: 1, trusted_schema: 0, like_nocase: 1 }]);
  });

  it("caps open event streams with 503 and Retry-After", async () => {
    const ctrl = new AbortController();
    try {
      const open = await Promise.all([0, 1].map(() => fetch(`${serve.url}/views/orders_by_user/changes`, { signal: ctrl.signal })));
      expect(open.map((r) => r.status)).toEqual([200, 200]);
      const third = await fetch(`${serve.url}/views/orders_by_user/changes`);
      expect(third.status).toBe(503);
      expect(third.headers.get("retry-after")).toBe("1");
      expect(((await third.json()) as { error: string }).error).toBe("TOO_MANY_STREAMS");
    } finally {
      ctrl.abort();
    }
  });

  it("counts the status page's event streams under the same cap: they cannot use it up nor pass it", async () => {
    const open = async () => Number(/^kappa_http_event_streams (\d+)$/m.exec(await (await fetch(`${serve.url}/metrics`)).text())?.[1]);
    await waitFor(async () => (await open()) === 0, 10_000, "the earlier streams closed");
    const ctrl = new AbortController();
    try {
      const pages = await Promise.all([0, 1].map(() => fetch(`${serve.url}/events/status`, { signal: ctrl.signal })));
      expect(pages.map((r) => r.status)).toEqual([200, 200]);
      for (const path of ["/events/status", "/views/orders_by_user/changes"]) {
        const over = await fetch(serve.url + path);
        expect(over.status, path).toBe(503);
        expect(over.headers.get("retry-after")).toBe("1");
        expect(((await over.json()) as { error: string }).error).toBe("TOO_MANY_STREAMS");
      }
    } finally {
      ctrl.abort();
    }
    await waitFor(async () => (await open()) === 0, 10_000, "the status streams closed");
    const again = new AbortController();
    try {
      expect((await fetch(`${serve.url}/events/status`, { signal: again.signal })).status).toBe(200);
    } finally {
      again.abort();
    }
  });

  it("the CLI exits at its timeout with the message and a non-zero code, leaving no query process behind", async () => {
    const fine = await cli(["query", "orders_by_user", "SELECT count(*) AS n FROM totals"], 30_000);
    expect(fine).toMatchObject({ code: 0, signal: null }); // a good answer exits by itself too
    const r = await cli(["query", "orders_by_user", RUNAWAY, "--timeout", "1"], 30_000);
    expect(r.signal).toBeNull(); // it exited by itself, not by the test's guard
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/query stopped after 1000 ms/);
    const big = await cli(["query", "orders_by_user", "SELECT randomblob(1e9) AS b"], 30_000);
    expect(big.code).not.toBe(0);
    expect(big.stderr).toMatch(/memory cap of 256 MiB/);
    const rows = await cli(["query", "orders_by_user", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3) SELECT x FROM c", "--max-rows", "2"], 30_000);
    expect(rows.code).not.toBe(0);
    expect(rows.stderr).toMatch(/the result has more than 2 rows, the cap per query/);
    expect(rows.stderr).toMatch(/--limit <n>/);
    // Every query process those runs started is gone (the CLI kills its own before it exits).
    await waitFor(() => queryProcesses(TAG).length === 0, 5000, `no query process left: ${queryProcesses(TAG).join(", ")}`);
  });
});

describe("queries that cannot hurt: kappa dev", () => {
  it("kills a runaway query at its timeout: dev's CPU time (worker, server and children, from /proc) stops growing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-dev-limits-"));
    const dataDir = join(dir, ".kappa");
    try {
      await using dev = await DevProcess.start(dataDir, ["--query-processes", "1"]);
      expect(kappa(["--data-dir", dataDir, "deploy", V1, "--wait"]).code).toBe(0);
      const running = query({ sql: RUNAWAY, timeoutMs: 1000 }, dev.http!);
      const runner = await busyQueryProcess(dev.http!, dev.child.pid!);
      expect((await running).json).toMatchObject({ error: "QUERY_TIMEOUT", message: "query stopped after 1000 ms" });
      await waitFor(() => gone(runner), 10_000, `query process ${runner} killed`);
      await cpuSettles(dev.child.pid!);
      expect((await query({ sql: "SELECT 1 AS x" }, dev.http!)).json.rows).toEqual([{ x: 1 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
