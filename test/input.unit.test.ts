import { describe, it, expect } from "vitest";
import { parseEventLine, parseOffset, typeMatches, validateEventType } from "../src/log/index.js";
import { DataDir, validateProcessorName, parseVersion, assertReadOnlySql } from "../src/views/index.js";
import { validateDefinition } from "../src/processors/index.js";

const opts = { maxBytes: 1024 };

describe("append input is checked line by line, with the line named", () => {
  it.each([
    ['{"type":"a.b","data":{"x":1}', /line 7: invalid JSON/],
    ["[1,2]", /line 7: not a JSON object/],
    ['{"type":"order placed","data":{}}', /line 7: "order placed" is not a valid event type/],
    ['{"type":"a.>","data":{}}', /line 7: "a.>" is not a valid event type/],
    ['{"type":"a","data":5}', /line 7: the event's data is not a JSON object/],
    ['{"data":{}}', /line 7: expected an envelope/],
    [JSON.stringify({ type: "a", data: { blob: "x".repeat(2000) } }), /line 7: event is \d+ bytes \(2\d{3} of data, up to \d+ of headers\), above the server's limit of 1024/],
    ['{"type":"a","id":"o-1\\nNats-Expected-Stream: x","data":{}}', /line 7: the id has a line break/],
    // NATS trims header values: " o-1" would be stored as "o-1" and one of the two events dropped as a duplicate.
    ['{"type":"a","id":" o-1","data":{}}', /line 7: the id " o-1" starts or ends with whitespace/],
    ['{"type":"a","id":"o-1\\t","data":{}}', /line 7: the id "o-1\\t" starts or ends with whitespace/],
    ['{"type":"a","id":"o-1\\u00a0","data":{}}', /starts or ends with whitespace/],
    ['{"type":"a","id":{"k":1},"data":{}}', /line 7: the id is an object, not a string or a number/],
    ['{"type":"a","id":1e999,"data":{}}', /line 7: the id is Infinity, not a string or a number/],
    ['{"type":"a","id":"","data":{}}', /line 7: the id is empty/],
  ])("%s", (line, message) => {
    expect(() => parseEventLine(line, 7, opts)).toThrow(message);
  });

  it("counts the headers against the server's limit: an event that fits only without them is refused before it is published", () => {
    // An event whose data is `bytes` long: {"blob":"xx…"} is 11 bytes of JSON around the x's.
    const line = (bytes: number) => JSON.stringify({ type: "a", id: "o-1", data: { blob: "x".repeat(bytes - 11) } });
    // 1024 bytes of data exactly fit max_payload alone, but not with Nats-Msg-Id and the batch headers.
    expect(() => parseEventLine(line(1024), 7, opts)).toThrow(/line 7: event is 1219 bytes \(1024 of data, up to 195 of headers\), above the server's limit of 1024/);
    expect(() => parseEventLine(line(1024 - 195), 7, opts)).not.toThrow();
    expect(() => parseEventLine(line(1024 - 194), 7, opts)).toThrow(/above the server's limit/);
  });

  it.each([
    ['{"k":{"a":1}}', /line 3: field k \(for --id-field\) is an object, not a string or a number/],
    ['{"k":[1,2]}', /line 3: field k \(for --id-field\) is an array, not a string or a number/],
    ['{"k":true}', /line 3: field k \(for --id-field\) is a boolean, not a string or a number/],
    ['{"k":" x"}', /line 3: field k \(for --id-field\) " x" starts or ends with whitespace/],
  ])("--id-field refuses %s, naming the line and the field", (line, message) => {
    expect(() => parseEventLine(line, 3, { ...opts, type: "t", idField: "k" })).toThrow(message);
  });

  it("--id-field takes strings and finite numbers; --id wins over it and is checked the same way", () => {
    expect(parseEventLine('{"k":12}', 1, { ...opts, type: "t", idField: "k" }).id).toBe("12");
    expect(parseEventLine('{"k":"a b"}', 1, { ...opts, type: "t", idField: "k" }).id).toBe("a b");
    expect(parseEventLine('{"k":"x"}', 1, { ...opts, type: "t", idField: "k", id: "mine" }).id).toBe("mine");
    expect(() => parseEventLine('{"k":"x"}', 1, { ...opts, type: "t", id: "mine " })).toThrow(/--id "mine " starts or ends with whitespace/);
  });

  it("takes the idempotency key from --id-field, nested fields too", () => {
    const ev = parseEventLine('{"order":{"id":"o-9"},"amount":3}', 1, { ...opts, type: "order.placed", idField: "order.id" });
    expect(ev).toEqual({ type: "order.placed", json: '{"order":{"id":"o-9"},"amount":3}', id: "o-9" });
    expect(() => parseEventLine('{"amount":3}', 4, { ...opts, type: "x", idField: "order.id" })).toThrow(/line 4: field order.id/);
  });

  it("parses offsets and refuses nonsense with a hint", () => {
    expect(parseOffset("start")).toEqual({ kind: "start" });
    expect(parseOffset("end")).toEqual({ kind: "end" });
    expect(parseOffset("42")).toEqual({ kind: "seq", seq: 42 });
    expect(parseOffset("2026-01-02T03:04:05Z")).toEqual({ kind: "time", time: "2026-01-02T03:04:05.000Z" });
    expect(() => parseOffset("0")).toThrow(/not a valid sequence/);
    expect(() => parseOffset("soon")).toThrow(/not understood/);
  });

  it("matches event types with NATS wildcards", () => {
    expect(typeMatches("order.*", "order.placed")).toBe(true);
    expect(typeMatches("order.*", "order.placed.eu")).toBe(false);
    expect(typeMatches("order.>", "order.placed.eu")).toBe(true);
    expect(typeMatches("order.>", "order")).toBe(false);
    expect(() => validateEventType("a..b")).toThrow();
  });
});

describe("names cannot escape the data directory", () => {
  it.each(["../etc", "a/b", "A", "", "x".repeat(65), "a.b", "..", "名前"])("processor name %j is refused", (name) => {
    expect(() => validateProcessorName(name)).toThrow(/not a valid processor name/);
  });

  it("refuses versions that are not positive integers", () => {
    for (const v of ["0", "-1", "1.5", "../1", "v", "1e3"]) expect(() => parseVersion(v)).toThrow(/not a valid version/);
    expect(parseVersion("v3")).toBe(3);
  });

  it("builds paths only under the data dir", () => {
    const d = new DataDir("/data");
    expect(d.viewFile("orders", 3)).toBe("/data/views/orders/v3.sqlite");
    expect(() => d.viewFile("../../etc", 1)).toThrow();
    expect(() => d.codeFile("../x", "js")).toThrow();
  });
});

describe("the query path refuses anything that is not a read", () => {
  it.each([
    ["INSERT INTO t VALUES (1)", /only SELECT/],
    ["update t set a = 1", /only SELECT/],
    ["DELETE FROM t", /only SELECT/],
    ["CREATE TABLE x (a)", /only SELECT/],
    ["DROP TABLE t", /only SELECT/],
    ["ATTACH DATABASE '/tmp/x' AS x", /only SELECT/],
    ["SELECT * FROM t; ATTACH '/tmp/x' AS y", /ATTACH is not allowed/],
    ["PRAGMA journal_mode = DELETE", /only SELECT/],
    ["SELECT * FROM pragma_table_info('t') WHERE 1; PRAGMA x=1", /PRAGMA is not allowed/],
    ["VACUUM INTO '/tmp/copy.db'", /only SELECT/],
    ["SELECT load_extension('/tmp/evil.so')", /loading extensions is not allowed/],
    ["WITH x AS (SELECT 1) DELETE FROM t", /read-only/],
    ["", /empty/],
    // SQLite applies a pragma's setting while compiling it, so EXPLAIN PRAGMA changes the handle; `--` inside
    // a block comment, a string or a [name] must not hide what follows it.
    ["EXPLAIN /* -- */ PRAGMA temp_store = FILE", /EXPLAIN is allowed only before SELECT, WITH or VALUES; got EXPLAIN PRAGMA/],
    ["EXPLAIN /* -- */ PRAGMA query_only = OFF", /EXPLAIN is allowed only before/],
    ["EXPLAIN /* -- */ PRAGMA trusted_schema = ON", /EXPLAIN is allowed only before/],
    ["EXPLAIN /* -- */ PRAGMA case_sensitive_like = ON", /EXPLAIN is allowed only before/],
    ["EXPLAIN QUERY PLAN PRAGMA temp_store = FILE", /got EXPLAIN PRAGMA/],
    ["explain\n-- a comment\npragma query_only = 0", /got EXPLAIN PRAGMA/],
    ["EXPLAIN", /got EXPLAIN alone/],
    ["SELECT '--' AS a; PRAGMA temp_store = FILE", /PRAGMA is not allowed/],
    ["SELECT [--] AS a; PRAGMA temp_store = FILE", /PRAGMA is not allowed/],
    ["SELECT \"--\" AS a; ATTACH '/tmp/x' AS y", /ATTACH is not allowed/],
    ["SELECT '/*' AS a; DELETE FROM t --*/", /read-only/],
    ["/* '' */ SELECT 1; PRAGMA temp_store = FILE", /PRAGMA is not allowed/],
  ])("%s", (sql, message) => {
    expect(() => assertReadOnlySql(sql)).toThrow(message);
  });

  it("lets reads through, including words inside strings and comments", () => {
    for (const sql of ["SELECT 'delete me' AS s", "-- drop table\nSELECT 1", "WITH a AS (SELECT 1 AS n) SELECT * FROM a", "SELECT replace(name, 'a', 'b') FROM t", "SELECT update_count FROM t",
      "EXPLAIN SELECT 1", "EXPLAIN QUERY PLAN /* -- */ SELECT * FROM t", "SELECT 'it''s /* not -- a comment' AS s", 'SELECT "delete" FROM t', "SELECT [pragma] FROM t", "SELECT * FROM pragma_table_info('t')"]) {
      expect(() => assertReadOnlySql(sql)).not.toThrow();
    }
  });
});

describe("processor definitions are checked with every problem named", () => {
  it("names each problem", () => {
    expect(() => validateDefinition({ name: "Bad-Name", schema: "CREATE TABLE", subjects: ["a b"], onError: "ignore" }, "m.ts")).toThrow(
      /m.ts is not a valid processor: "Bad-Name" is not a valid processor name \(use \[a-z0-9_\]\); `schema` must be a list of SQL strings; give `apply\(event, ctx\)` or `on: .*"a b" is not a valid subject filter; `onError` must be "halt" or "skip"/,
    );
    expect(() => validateDefinition(undefined, "m.ts")).toThrow(/no default export/);
  });
});
