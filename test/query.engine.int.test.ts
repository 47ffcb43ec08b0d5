import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { QueryPool, waitForSeq, type QueryJob } from "../src/views/index.js";

const dir = mkdtempSync(join(tmpdir(), "kappa-engine-"));
let main: string;
let other: string;
let pool: QueryPool;

function makeView(path: string, seq: number): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(`CREATE TABLE kappa_checkpoint (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL); INSERT INTO kappa_checkpoint VALUES (1, ${seq});
           CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2);`);
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
}

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
// Generous deadlines: a loaded CI machine may take seconds to start a node process.
const job = (sql: string, extra: Partial<QueryJob> = {}): QueryJob => ({ path: main, sql, params: {}, limit: 100, maxBytes: 1 << 20, deadline: Date.now() + 30_000, timeoutMs: 30_000, ...extra });
/** This test's own query processes (children of this process), from /proc. */
function queryProcessPids(): number[] {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("queryProcess.mjs");
    } catch {
      return false;
    }
  });
}

/** Bytes a process has written through write() and friends (temp files included), from /proc. */
const writtenBytes = (pid: number) => Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))![1]);
const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
/** Statements that change a handle's settings as SQLite compiles them, though EXPLAIN runs nothing. */
const CHANGING = ["temp_store = FILE", "query_only = OFF", "trusted_schema = ON", "case_sensitive_like = ON"].map((p) => `EXPLAIN /* -- */ PRAGMA ${p}`);
/** The settings a later client's handle must still have (2 = temp_store MEMORY; LIKE ignores case). */
const SETTINGS = "SELECT (SELECT * FROM pragma_temp_store) AS temp_store, (SELECT * FROM pragma_query_only) AS query_only, (SELECT * FROM pragma_trusted_schema) AS trusted_schema, 'a' LIKE 'A' AS like_nocase";
const PRISTINE = { temp_store: 2, query_only: 1, trusted_schema: 0, like_nocase: 1 };

beforeAll(() => {
  main = join(dir, "main.sqlite");
  other = join(dir, "other.sqlite");
  makeView(main, 7);
  makeView(other, 9);
  pool = new QueryPool({ size: 1, maxQueue: 1, memoryBytes: 64 << 20, warm: true });
});

afterAll(async () => {
  await pool?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the query engine refuses on its own (no text check in front of it)", () => {
  const refused = [
    `SELECT 1 AS "a'", load_extension('/x.so') --'`,
    "PRAGMA query_only = OFF",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA hard_heap_limit = 1",
    "PRAGMA user_version = 5",
    `ATTACH DATABASE '${join(dir, "new.sqlite")}' AS x`,
    "DETACH DATABASE main",
    `VACUUM INTO '${join(dir, "copy.sqlite")}'`,
    "WITH x AS (SELECT 1) INSERT INTO t VALUES ('c', 3)",
    "  /* a comment first */ -- and a line\n DELETE FROM t",
    "CREATE TABLE evil (x)",
    "BEGIN IMMEDIATE",
    // SQLite applies these settings while compiling, EXPLAIN or not: they would hold for every later client.
    ...CHANGING,
    "EXPLAIN QUERY PLAN PRAGMA temp_store = FILE",
  ];
  for (const sql of refused) {
    it(`refuses ${sql.replace(/\s+/g, " ").slice(0, 60)}`, async () => {
      const before = sha(main);
      await expect(pool.run(job(sql))).rejects.toMatchObject({ code: "QUERY_REFUSED" });
      expect(sha(main)).toBe(before);
    });
  }

  it("left every setting of the kept handle as it was", async () => {
    expect((await pool.run(job(SETTINGS))).rows).toEqual([PRISTINE]);
  });

  it("created no file and left the caps in place: the next query still answers", async () => {
    expect(existsSync(join(dir, "new.sqlite"))).toBe(false);
    expect(existsSync(join(dir, "copy.sqlite"))).toBe(false);
    expect((await pool.run(job("SELECT k, v FROM t ORDER BY k"))).rows).toEqual([{ k: "a", v: 1 }, { k: "b", v: 2 }]);
  });

  it("attaches files the caller names read-only: SQL can read them, never write them", async () => {
    const r = await pool.run(job("SELECT m.v AS a, o.v AS b FROM main.t m JOIN other.t o USING (k) ORDER BY k", { attach: { other } }));
    expect(r).toMatchObject({ seq: 7, rows: [{ a: 1, b: 1 }, { a: 2, b: 2 }] });
    const before = sha(other);
    await expect(pool.run(job("WITH x AS (SELECT 1) UPDATE other.t SET v = 0", { attach: { other } }))).rejects.toMatchObject({ code: "QUERY_REFUSED" });
    expect(sha(other)).toBe(before);
  });
});

describe("a statement that changes a kept handle's settings", () => {
  it("closes the handle, so a later client reads with the settings it was opened with (statement check off)", async () => {
    // As if the statement check had a hole: the statements run (they return rows and write nothing).
    await using open = new QueryPool({ size: 1, memoryBytes: 64 << 20, statementCheck: false });
    expect((await open.run(job(SETTINGS))).rows).toEqual([PRISTINE]);
    for (const sql of CHANGING) {
      expect((await open.run(job(sql))).rows.length).toBeGreaterThan(0);
      expect((await open.run(job(SETTINGS))).rows).toEqual([PRISTINE]);
    }
  });
});

describe("the query pool's caps", () => {
  it("kills a runaway at its deadline, fails a queued query at its own deadline, refuses beyond the queue", async () => {
    const killedBefore = pool.stats().killed;
    const runaway = pool.run(job(RUNAWAY, { deadline: Date.now() + 1500, timeoutMs: 1500 }));
    await new Promise((r) => setTimeout(r, 100));
    const queued = pool.run(job("SELECT 1 AS x", { deadline: Date.now() + 400, timeoutMs: 400 }));
    await expect(pool.run(job("SELECT 2 AS x"))).rejects.toMatchObject({ code: "QUERY_BUSY" });
    await expect(queued).rejects.toThrow(/query stopped after 400 ms \(\d+ ms of it waiting for a free query process\)/);
    await expect(runaway).rejects.toMatchObject({ code: "QUERY_TIMEOUT", message: "query stopped after 1500 ms" });
    expect(pool.stats()).toMatchObject({ killed: killedBefore + 1, busy: 0, queued: 0 });
    expect((await pool.run(job("SELECT 3 AS x"))).rows).toEqual([{ x: 3 }]);
  });

  it("refuses a value over the memory cap and an answer over the byte cap", async () => {
    await expect(pool.run(job("SELECT randomblob(1e9) AS b"))).rejects.toMatchObject({ code: "RESULT_TOO_LARGE", message: "a value or the query's working memory needs more than the memory cap of 64 MiB per query" });
    await expect(pool.run(job("SELECT hex(randomblob(1000)) AS h", { maxBytes: 500 }))).rejects.toMatchObject({ code: "RESULT_TOO_LARGE", message: "the result is larger than the cap of 500 B per query" });
    expect((await pool.run(job("SELECT k FROM t", { limit: 1 }))).truncated).toBe(true);
    // A blob counts as its base64 text, measured before it is converted.
    await expect(pool.run(job("SELECT randomblob(3000) AS b", { maxBytes: 1000 }))).rejects.toMatchObject({ code: "RESULT_TOO_LARGE" });
    expect((await pool.run(job("SELECT x'00ff' AS b"))).rows).toEqual([{ b: "AP8=" }]);
  });

  it("refuses more rows than maxRows with RESULT_TOO_LARGE naming the cap; a smaller limit cuts instead; exactly maxRows answers", async () => {
    const { limit: _, ...noCut } = job("SELECT k FROM t ORDER BY k", { maxRows: 1 });
    await expect(pool.run(noCut)).rejects.toMatchObject({ code: "RESULT_TOO_LARGE", message: "the result has more than 1 rows, the cap per query", hint: expect.stringMatching(/--max-result-rows/) });
    expect(await pool.run({ ...noCut, limit: 1 })).toMatchObject({ rows: [{ k: "a" }], truncated: true });
    expect(await pool.run({ ...noCut, maxRows: 2 })).toMatchObject({ rows: [{ k: "a" }, { k: "b" }], truncated: false });
  });

  it("sorts without temp files: the query process writes next to nothing to disk for a 50 MB ORDER BY", async () => {
    const [pid] = queryProcessPids();
    expect(pid).toBeDefined();
    const before = writtenBytes(pid!);
    const sort = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 500000) SELECT count(*) AS n FROM (SELECT hex(randomblob(50)) AS h FROM c ORDER BY h)";
    expect((await pool.run(job(sort))).rows).toEqual([{ n: 500000 }]);
    // Spilled to temp files, this sort writes about 50 MB; in memory only the answer goes out.
    expect(writtenBytes(pid!) - before).toBeLessThan(1 << 20);
  });

  it("caps a query's working memory (the kernel's RLIMIT_DATA): sorting 800 MB gets RESULT_TOO_LARGE", async () => {
    // Each value is small enough to pass on its own; only the sort as a whole is too big.
    const sort = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 40) SELECT count(*) AS n FROM (SELECT randomblob(20000000) AS b FROM c ORDER BY b)";
    await expect(pool.run(job(sort))).rejects.toMatchObject({ code: "RESULT_TOO_LARGE", message: expect.stringMatching(/memory cap of 64 MiB/) });
    expect((await pool.run(job("SELECT 1 AS x"))).rows).toEqual([{ x: 1 }]);
  });
});

describe("kept handles", () => {
  it("a file replaced under the same path (a rebuild) is read anew; a deleted one is VIEW_MISSING", async () => {
    const path = join(dir, "replaced.sqlite");
    makeView(path, 1);
    expect((await pool.run(job("SELECT 1 AS x", { path }))).seq).toBe(1);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    await expect(pool.run(job("SELECT 1 AS x", { path }))).rejects.toMatchObject({ code: "VIEW_MISSING" });
    makeView(path, 2);
    expect((await pool.run(job("SELECT 1 AS x", { path }))).seq).toBe(2);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    makeView(path, 3); // replaced between two queries, with the old handle still open
    expect((await pool.run(job("SELECT 1 AS x", { path }))).seq).toBe(3);
  });
});

describe("--min-seq waits on one handle", () => {
  it("returns once the checkpoint reaches the sequence, and times out with MIN_SEQ_TIMEOUT", async () => {
    const writer = new Database(main);
    const waiting = waitForSeq(main, 8, Date.now() + 5000);
    setTimeout(() => writer.prepare("UPDATE kappa_checkpoint SET seq = 8 WHERE id = 1").run(), 100);
    const cost = await waiting;
    writer.close();
    // Many polls over 100 ms, one handle: a connection per poll would count one open per poll.
    expect(cost.polls).toBeGreaterThan(3);
    expect(cost.opens).toBe(1);
    await expect(waitForSeq(main, 99, Date.now() + 150)).rejects.toMatchObject({ code: "MIN_SEQ_TIMEOUT", message: "the view has not applied sequence 99 yet (at 8)" });
  });
});
