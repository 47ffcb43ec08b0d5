import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext, kappa } from "./support/cli.js";
import { writeProcessor } from "./support/processors.js";
import { referenceTotals } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { exportView, readCheckpoint } from "../src/views/index.js";
import { recordSource } from "../src/cli/records.js";
import { generateOrders } from "../examples/orders/generate.js";

const ORDERS = resolve("examples/orders/orders_by_user.ts");

// A view whose tables hold every SQLite storage class: 64-bit integers past 2^53, reals, text that
// needs quoting, blobs, nulls, a column of mixed classes, and a WITHOUT ROWID table.
const KINDS = writeProcessor(`
export default {
  name: "kinds",
  subjects: ["kind.*"],
  schema: [
    "CREATE TABLE things (id INTEGER PRIMARY KEY, big INTEGER, r REAL, t TEXT, b BLOB, mixed, n INTEGER)",
    "CREATE TABLE tags (tag TEXT, thing INTEGER, PRIMARY KEY (tag, thing)) WITHOUT ROWID",
  ],
  on: {
    "kind.made": (e, ctx) => {
      const d = e.data;
      ctx.db.prepare("INSERT INTO things VALUES (?, ?, ?, ?, ?, ?, NULL)").run(d.id, BigInt(d.big), d.r, d.t, Buffer.from(d.b, "hex"), d.mixed);
      ctx.db.prepare("INSERT INTO tags VALUES (?, ?)").run("tag-" + (d.id % 3), d.id);
    },
  },
};
`);

// Text a spreadsheet would run as a formula, beside numbers that start with "-" and must stay numbers.
const CELLS = writeProcessor(`
export default {
  name: "cells",
  subjects: ["cell.*"],
  schema: ['CREATE TABLE cells (id INTEGER PRIMARY KEY, t TEXT, i INTEGER, r REAL, "@sum" TEXT, b BLOB)'],
  on: {
    "cell.made": (e, ctx) => {
      const d = e.data;
      ctx.db.prepare("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?)").run(d.id, d.t, BigInt(d.i), d.r, d.sum, Buffer.from(d.b, "hex"));
    },
  },
};
`);
/** Each text and what a spreadsheet-safe CSV holds for it. */
const FORMULA_CELLS: [string, string][] = [
  ["=1+2", "'=1+2"],
  ["+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"],
  ["-2+3", "'-2+3"],
  ["@SUM(1)", "'@SUM(1)"],
  ["\t=1", "'\t=1"],
  ["\r=1", "'\r=1"],
  [" =1+2", "' =1+2"],
  ["-5", "-5"], // a plain number as text is never a formula
  ["-9223372036854775808", "-9223372036854775808"],
  ["a;=HYPERLINK(1)", "a;=HYPERLINK(1)"], // quoted: a ';' locale keeps it one cell
  ["it's fine", "it's fine"],
];

let env: TestEnv;
let duck: DuckDBConnection;
let instance: DuckDBInstance;

/** Reads with DuckDB: a reader that shares no code with the writer. */
async function duckRows(sql: string): Promise<Record<string, unknown>[]> {
  const r = await duck.runAndReadAll(sql);
  return r.getRowObjectsJS() as Record<string, unknown>[];
}

const sqlPath = (p: string) => `'${p.replaceAll("'", "''")}'`;

beforeAll(async () => {
  env = await TestEnv.start();
  await env.appendOrders(3000, 5);
  const kinds = Array.from({ length: 50 }, (_, i) => ({
    type: "kind.made",
    id: `kind-${i}`,
    data: { id: i, big: String(2n ** 60n + BigInt(i)), r: i / 7, t: i % 2 ? `comma, "quote"\nline ${i}` : `plain ${i}`, b: Buffer.from(`blob-${i}`).toString("hex"), mixed: i % 3 === 0 ? i : i % 3 === 1 ? `text ${i}` : i + 0.5 },
  }));
  await env.append(kinds);
  // Negative integers (the smallest 64-bit one too) and reals; a blob whose base64 starts with "+".
  await env.append(FORMULA_CELLS.map(([t], i) => ({ type: "cell.made", id: `cell-${i}`, data: { id: i, t, i: i === 0 ? String(-(2n ** 63n)) : String(-i), r: -i - 0.5, sum: "=SUM(A1:A9)", b: "fbff" } })));
  await env.startWorker();
  await deployModule(env.nc, env.spec, ORDERS);
  await deployModule(env.nc, env.spec, KINDS);
  await deployModule(env.nc, env.spec, CELLS);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  await env.waitForRecord("kinds", (r) => r.live === 1);
  await env.waitForRecord("cells", (r) => r.live === 1);
  instance = await DuckDBInstance.create(":memory:");
  duck = await instance.connect();
}, 60_000);

afterAll(async () => {
  duck?.closeSync();
  instance?.closeSync();
  await env?.close();
});

describe("kappa export: a consistent snapshot for analytics tools", () => {
  it("writes Parquet that DuckDB reads back equal to the view as of the recorded sequence, while events keep arriving", async () => {
    const placed = [...generateOrders(3000, 5)];
    // More orders arrive, in chunks, before, while and after the export runs: the snapshot must reflect exactly one sequence.
    const supply = [...generateOrders(40_000, 6)].slice(3000).map((e) => ({ ...e, id: `more-${e.id}` }));
    const more: typeof supply = [];
    const seqs: number[] = [];
    let exported = false;
    const appending = (async () => {
      // One chunk more after the export is done, so the last append of the run comes after it.
      for (let i = 0, after = 0; i < supply.length && after < 1; i += 100) {
        if (exported) after++;
        const chunk = supply.slice(i, i + 100);
        seqs.push(await env.append(chunk));
        more.push(...chunk);
      }
    })();
    // Started once the view has applied some of them, so the export begins in the middle of the run.
    await waitFor(() => seqs.length > 0 && (readCheckpoint(env.dataDir.viewFile("orders_by_user", 1)) ?? 0) >= seqs[0]!, 30_000, "the first appends applied");
    const out = join(env.dir, "totals.parquet");
    const r = await exportView(env.dataDir, recordSource(cliContext(env)), { processor: "orders_by_user", format: "parquet", out, stream: env.spec.stream, chunkRows: 97 }).finally(() => (exported = true));
    await appending;
    // The export's sequence fell inside the appends: after the first, before the last.
    expect(r.seq).toBeGreaterThan(3050 + 1);
    expect(r.seq).toBeLessThan(seqs.at(-1)!);
    expect(r.tables).toEqual([{ table: "totals", file: out, rows: expect.any(Number), columns: ["user_id", "orders", "amount"] }]);
    // The log holds the first 3000 orders, the 50 kinds and the cells, then the new orders: the reference is every order at or below seq.
    const log = [...placed, ...Array.from({ length: 50 + FORMULA_CELLS.length }, () => null), ...more];
    const upTo = log.slice(0, r.seq).filter((e) => e !== null);
    const expected = referenceTotals(upTo as typeof placed);
    const rows = await duckRows(`SELECT user_id, orders, amount FROM read_parquet(${sqlPath(out)}) ORDER BY user_id`);
    expect(rows.map((x) => ({ user_id: x.user_id, orders: Number(x.orders), amount: x.amount }))).toEqual(expected);
    expect(r.tables[0]!.rows).toBe(expected.length);
    const meta = await duckRows(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata(${sqlPath(out)})`);
    const kv = Object.fromEntries(meta.map((m) => [m.k, m.v]));
    expect(kv).toMatchObject({ "kappa.processor": "orders_by_user", "kappa.version": "1", "kappa.seq": String(r.seq), "kappa.table": "totals", "kappa.stream": "KAPPA" });
    // Several row groups were written (chunks of 97 rows), and nothing else is left beside the file.
    const groups = await duckRows(`SELECT count(DISTINCT row_group_id) AS g FROM parquet_metadata(${sqlPath(out)})`);
    expect(Number(groups[0]!.g)).toBeGreaterThan(1);
    expect(existsSync(`${out}.tmp-${process.pid}`)).toBe(false);
  });

  it("keeps every storage class through Parquet, CSV and NDJSON (read by DuckDB), one directory for several tables", async () => {
    const file = env.dataDir.viewFile("kinds", 1);
    const db = new Database(file, { readonly: true });
    db.defaultSafeIntegers(true);
    const view = db.prepare("SELECT id, big, r, t, hex(b) AS b, mixed, n FROM things ORDER BY id").all() as Record<string, unknown>[];
    const tags = db.prepare("SELECT tag, thing FROM tags ORDER BY tag, thing").all() as Record<string, unknown>[];
    db.close();
    const ctx = cliContext(env);
    const seq = readCheckpoint(file)!;

    const pq = join(env.dir, "kinds-pq");
    const p = await exportView(env.dataDir, recordSource(ctx), { processor: "kinds", format: "parquet", out: pq, stream: "KAPPA" });
    expect(p.seq).toBe(seq);
    expect(p.tables.map((t) => t.table)).toEqual(["tags", "things"]);
    const manifest = JSON.parse(readFileSync(join(pq, "kappa-export.json"), "utf8"));
    expect(manifest).toMatchObject({ processor: "kinds", version: 1, seq, tables: [{ table: "tags", file: "tags.parquet", rows: 50 }, { table: "things", file: "things.parquet", rows: 50 }] });
    const fromParquet = await duckRows(`SELECT id, big, r, t, hex(b) AS b, mixed, n FROM read_parquet(${sqlPath(join(pq, "things.parquet"))}) ORDER BY id`);
    expect(fromParquet.map((x) => ({ ...x, id: BigInt(x.id as number) }))).toEqual(view.map((v) => ({ ...v, mixed: String(v.mixed) })));
    expect(await duckRows(`SELECT tag, thing FROM read_parquet(${sqlPath(join(pq, "tags.parquet"))}) ORDER BY tag, thing`)).toEqual(tags);

    const csv = join(env.dir, "things.csv");
    const c = await exportView(env.dataDir, recordSource(ctx), { processor: "kinds", format: "csv", out: csv, table: "things", stream: "KAPPA" });
    expect(JSON.parse(readFileSync(`${csv}.kappa.json`, "utf8"))).toMatchObject({ processor: "kinds", version: 1, seq: c.seq, format: "csv" });
    const fromCsv = await duckRows(`SELECT id, big, r, t, hex(from_base64(b)) AS b, mixed, n FROM read_csv(${sqlPath(csv)}, header = true, all_varchar = true) ORDER BY id::BIGINT`);
    expect(fromCsv).toEqual(view.map((v) => ({ id: String(v.id), big: String(v.big), r: String(v.r), t: v.t, b: v.b, mixed: String(v.mixed), n: null })));

    const nd = join(env.dir, "things.ndjson");
    await exportView(env.dataDir, recordSource(ctx), { processor: "kinds", format: "ndjson", out: nd, table: "things", stream: "KAPPA" });
    const fromNd = await duckRows(`SELECT id, big, r, t, hex(from_base64(b)) AS b, mixed::VARCHAR AS mixed FROM read_json(${sqlPath(nd)}, format = 'newline_delimited', columns = {id: 'BIGINT', big: 'VARCHAR', r: 'DOUBLE', t: 'VARCHAR', b: 'VARCHAR', mixed: 'VARCHAR'}) ORDER BY id`);
    // 2^60 + i is past 2^53: NDJSON carries it as a string so no digit is lost.
    expect(fromNd).toEqual(view.map((v) => ({ id: v.id, big: String(v.big), r: v.r, t: v.t, b: v.b, mixed: String(v.mixed) })));
  });

  it("neutralises text a spreadsheet would run as a formula (a leading '), keeps numbers as they are, and --csv-raw writes it raw", async () => {
    const read = async (path: string) => duckRows(`SELECT * FROM read_csv(${sqlPath(path)}, header = true, all_varchar = true) ORDER BY id::BIGINT`);
    const numbers = (i: number) => ({ id: String(i), i: i === 0 ? "-9223372036854775808" : String(-i), r: String(-i - 0.5), b: "+/8=" });
    const safe = join(env.dir, "cells.csv");
    const r = await exportView(env.dataDir, recordSource(cliContext(env)), { processor: "cells", format: "csv", out: safe, stream: "KAPPA" });
    expect(await read(safe)).toEqual(FORMULA_CELLS.map(([, out], i) => ({ ...numbers(i), t: out, "'@sum": "'=SUM(A1:A9)" })));
    // The header's "@sum" and every row's "=SUM(A1:A9)" count too.
    expect(r.tables[0]).toMatchObject({ rows: FORMULA_CELLS.length, prefixed: 7 + 1 + FORMULA_CELLS.length });
    expect(JSON.parse(readFileSync(`${safe}.kappa.json`, "utf8"))).toMatchObject({ csvFormulas: "prefixed", tables: [{ prefixed: 7 + 1 + FORMULA_CELLS.length }] });

    const base = ["--nats", env.server.url, "--data-dir", env.dataDir.root];
    const raw = join(env.dir, "cells-raw.csv");
    const cli = kappa([...base, "export", "cells", "--format", "csv", "--csv-raw", "--out", raw]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(await read(raw)).toEqual(FORMULA_CELLS.map(([t], i) => ({ ...numbers(i), t, "@sum": "=SUM(A1:A9)" })));
    expect(JSON.parse(readFileSync(`${raw}.kappa.json`, "utf8")).csvFormulas).toBe("raw");

    // kappa query --format csv: the same rule over the answer's values (a 64-bit integer arrives as text: still a number).
    const q = (...extra: string[]) => kappa([...base, "query", "cells", "SELECT t, i, r, \"@sum\" FROM cells ORDER BY id", "--format", "csv", ...extra]);
    const asCsv = async (text: string) => {
      const path = join(env.dir, `q-${Date.now()}.csv`);
      writeFileSync(path, text);
      return duckRows(`SELECT * FROM read_csv(${sqlPath(path)}, header = true, all_varchar = true)`);
    };
    const qs = q();
    expect(qs.code, qs.stderr).toBe(0);
    expect(await asCsv(qs.stdout)).toEqual(FORMULA_CELLS.map(([, out], i) => ({ t: out, i: numbers(i).i, r: numbers(i).r, "'@sum": "'=SUM(A1:A9)" })));
    const qr = q("--csv-raw");
    expect(await asCsv(qr.stdout)).toEqual(FORMULA_CELLS.map(([t], i) => ({ t, i: numbers(i).i, r: numbers(i).r, "@sum": "=SUM(A1:A9)" })));
    const wrong = kappa([...base, "query", "cells", "SELECT 1", "--csv-raw"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^kappa: --csv-raw applies to --format csv\n {2}hint:/);
  });

  it("answers bad requests with one line and a hint, from the real CLI", async () => {
    const base = ["--nats", env.server.url, "--data-dir", env.dataDir.root];
    const noTable = kappa([...base, "export", "kinds", "--format", "csv", "--out", join(env.dir, "x.csv"), "--table", "nope"]);
    expect(noTable.code).not.toBe(0);
    expect(noTable.stderr).toMatch(/no table nope/);
    expect(noTable.stderr).toMatch(/tables: tags, things/);
    expect(kappa([...base, "export", "kinds", "--format", "xlsx", "--out", "x"]).stderr).toMatch(/unknown export format xlsx/);
    const ok = kappa([...base, "--json", "export", "orders_by_user", "--format", "ndjson", "--out", join(env.dir, "t.ndjson")]);
    expect(ok.code).toBe(0);
    const r = JSON.parse(ok.stdout);
    expect(r).toMatchObject({ processor: "orders_by_user", version: 1, format: "ndjson", tables: [{ table: "totals" }] });
    expect(readFileSync(join(env.dir, "t.ndjson"), "utf8").trim().split("\n")).toHaveLength(r.tables[0].rows);
  });
});
